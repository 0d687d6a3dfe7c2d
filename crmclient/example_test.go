package crmclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/lead"
)

// A stand-in CRM: v2 add answers like SalesMan does.
func fakeCRM() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Header.Get("apikey") != "secret" {
			fmt.Fprint(w, `{"result":"Error","error":{"code":401,"text":"Неизвестный пользователь"}}`)
			return
		}
		fmt.Fprint(w, `{"result":"Success","id":940}`)
	}))
}

func ExampleClient_Add() {
	srv := fakeCRM()
	defer srv.Close()

	c, err := crmclient.New(srv.URL, "robot@example.com", "secret",
		crmclient.WithAPIVersion(crmclient.V2), crmclient.WithJSON(true))
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := c.Add(context.Background(), crmclient.Lead{
		Lead: lead.Lead{Title: "Ann", Email: "ann@example.com"},
		UIDs: map[string]string{"leadrelay": "lr-1"},
	})
	fmt.Println(id, err)
	// Output: 940 <nil>
}

func ExampleDiagnose() {
	srv := fakeCRM()
	defer srv.Close()

	c, err := crmclient.New(srv.URL, "robot@example.com", "wrong",
		crmclient.WithAPIVersion(crmclient.V2), crmclient.WithJSON(true))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.Add(context.Background(), crmclient.Lead{Lead: lead.Lead{Title: "Ann"}})
	fmt.Println(err)
	d := crmclient.Diagnose(err)
	fmt.Println(d.Class)
	fmt.Println(d.Reason.Code)
	fmt.Println(d.Reason.Text(delivery.Operators))
	// Output:
	// crmclient: add: CRM error 401: Неизвестный пользователь
	// config
	// config_login
	// the CRM does not know the login (or, on v2, the API key) (CRM code 401): check LEADRELAY_CRM_LOGIN and LEADRELAY_CRM_APIKEY: Неизвестный пользователь
}
