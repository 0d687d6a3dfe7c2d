package crmsim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"leadrelay/crmsim"
)

// A v2 add against the simulator, then the stored lead as tests see it.
func Example() {
	sim, err := crmsim.New(crmsim.Config{APIKey: "secret"})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	ts := httptest.NewServer(sim)
	defer ts.Close()

	form := url.Values{
		"login": {"admin@example.com"}, "apikey": {"secret"}, "action": {"add"},
		"title": {"Ann <b>Lee</b>"}, "email": {"ann@example.com"}, "uids[relay_id]": {"r-1"},
	}
	resp, err := http.Post(ts.URL+crmsim.PathV2, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	l := sim.Leads()[0]
	fmt.Println(l.ID, l.Title, l.UserLogin, l.UIDs["relay_id"])
	// Output:
	// 200 {"result":"Success","id":1}
	// 1 Ann Lee admin@example.com r-1
}

// Injected faults: every add is refused with the CRM's add error.
func ExampleSim_SetFaults() {
	sim, _ := crmsim.New(crmsim.Config{APIKey: "secret"})
	sim.SetFaults(crmsim.Faults{RejectMarker: "[reject]"})
	ts := httptest.NewServer(sim)
	defer ts.Close()

	resp, _ := http.PostForm(ts.URL+crmsim.PathV1, url.Values{
		"login": {"admin@example.com"}, "apikey": {"secret"}, "action": {"add"}, "title": {"[reject] me"},
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	fmt.Println(len(sim.Leads()), sim.Stats().Faults["reject"])
	// Output:
	// {"error":{"code":"1","text":"Ошибка добавления лида. Запись отклонена (crmsim reject marker)"},"Error":"Ошибка добавления лида. Запись отклонена (crmsim reject marker)"}
	// 0 1
}
