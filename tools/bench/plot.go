package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePlot draws accepted leads/s against client concurrency and
// delivered leads/s against processes × concurrency (and, when measured,
// the PHP-pool sweeps) into a PNG file.
func (r *Report) WritePlot(path string) error {
	var row []*plot.Plot
	if p, err := r.intakePlot(); err != nil {
		return err
	} else if p != nil {
		row = append(row, p)
	}
	if p, err := r.deliveryPlot(); err != nil {
		return err
	} else if p != nil {
		row = append(row, p)
	}
	if p, err := r.poolPlot(); err != nil {
		return err
	} else if p != nil {
		row = append(row, p)
	}
	if len(row) == 0 {
		return fmt.Errorf("bench plot: nothing measured to plot")
	}
	img := vgimg.New(vg.Points(float64(420*len(row))), vg.Points(360))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Points(16), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func (r *Report) intakePlot() (*plot.Plot, error) {
	if len(r.Intake) == 0 {
		return nil, nil
	}
	p := leadsPlot("intake: accepted leads/s", "keep-alive clients")
	err := addLines(p, []string{intakeRaw, intakeBare, intakeJSON, intakeDropIn}, func(v string) (pts plotter.XYs) {
		for _, c := range intakeLevels {
			if pt, ok := r.intakeAt(v, c); ok {
				pts = append(pts, plotter.XY{X: float64(c), Y: pt.PerSec})
			}
		}
		return pts
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (r *Report) deliveryPlot() (*plot.Plot, error) {
	if len(r.Delivery) == 0 {
		return nil, nil
	}
	p := leadsPlot("delivery: leads/s, zero-latency CRM", "worker processes × concurrency")
	var ticks []plot.Tick
	for i, s := range deliveryShapes {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: s.String()})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.3, float64(len(deliveryShapes))-0.7
	err := addLines(p, []string{deliveryNoop, deliveryRaw, deliveryRelay}, func(v string) (pts plotter.XYs) {
		for i, s := range deliveryShapes {
			if pt, ok := r.deliveryAt(v, s.procs, s.conc); ok {
				pts = append(pts, plotter.XY{X: float64(i), Y: pt.PerSec})
			}
		}
		return pts
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// leadsPlot is an empty plot of leads/s, from 0, against xLabel.
func leadsPlot(title, xLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = "leads/s"
	p.Y.Min = 0
	return p
}

// addLines adds a line of each variant's points to p, leaving out the
// variants without any, and puts the legend on top.
func addLines(p *plot.Plot, variants []string, points func(variant string) plotter.XYs) error {
	var args []any
	for _, v := range variants {
		if pts := points(v); len(pts) > 0 {
			args = append(args, v, pts)
		}
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Legend.Top = true
	return nil
}
