package server

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/img2vid/img2vid"
)

// schema is the part of an OpenAPI schema the drift checks read.
type schema struct {
	Type       string            `json:"type"`
	Enum       []string          `json:"enum"`
	Minimum    *float64          `json:"minimum"`
	Maximum    *float64          `json:"maximum"`
	Properties map[string]schema `json:"properties"`
}

// TestOpenAPIFormMatchesTheOptionTable fails when the documented upload
// form and img2vid.OptionTable, which the server parses the form with,
// drift apart: the same fields, types, allowed values and bounds.
func TestOpenAPIFormMatchesTheOptionTable(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	var post struct {
		RequestBody struct {
			Content map[string]struct {
				Schema schema `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc.Paths["/api/jobs"]["post"], &post); err != nil {
		t.Fatal(err)
	}
	form := post.RequestBody.Content["multipart/form-data"].Schema.Properties
	if _, ok := form["files"]; !ok {
		t.Error("the form lacks files")
	}
	for _, spec := range img2vid.OptionTable {
		p, ok := form[spec.Name]
		if !ok {
			t.Errorf("option %s is not in openapi.json", spec.Name)
			continue
		}
		if p.Type != spec.Type || !slices.Equal(p.Enum, spec.Enum) {
			t.Errorf("option %s: openapi.json says %s %v, the table %s %v", spec.Name, p.Type, p.Enum, spec.Type, spec.Enum)
		}
		if spec.Bounded != (p.Minimum != nil && p.Maximum != nil) || spec.Bounded && (*p.Minimum != spec.Min || *p.Maximum != spec.Max) {
			t.Errorf("option %s: openapi.json bounds %v..%v, the table %v..%v (bounded %v)", spec.Name, p.Minimum, p.Maximum, spec.Min, spec.Max, spec.Bounded)
		}
	}
	for name := range form {
		if _, ok := img2vid.OptionByName(name); !ok && name != "files" && name != "audio" && name != "captions" && name != "durations" {
			t.Errorf("openapi.json documents form field %s, which is neither a file field, the captions or durations nor in the option table", name)
		}
	}
	var limits []string
	for _, s := range img2vid.LimitTable {
		limits = append(limits, s.Name)
	}
	if got := doc.Components.Schemas["Error"].Properties["limit"].Enum; !slices.Equal(got, limits) {
		t.Errorf("openapi.json's Error.limit lists %v, the limit table %v", got, limits)
	}
}
