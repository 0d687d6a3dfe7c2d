package bench

import (
	"context"

	"gonum.org/v1/plot"
)

// pool is filled in when the simulator has a PHP-pool mode.
func (b *bench) pool(context.Context) error { return nil }

func (r *Report) poolRows() []Row { return nil }

func (r *Report) poolPlot() (*plot.Plot, error) { return nil, nil }
