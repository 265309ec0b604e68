//go:build unix

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// nullTemplate returns a template that does what the template at path does
// apart from AWS: Packer's null builder with the communicator settings of
// the template's source block and the same provisioner blocks, with the
// template's variables and locals. Its wall time is the part of a build no
// AWS component can shorten.
//
// The pieces are taken from the parsed template (the source text of each
// block and attribute), so that the null build follows the template when it
// changes.
func nullTemplate(path string) (string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("null template: %w", err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return "", fmt.Errorf("null template: %w", diags)
	}
	text := func(r hcl.Range) string { return string(r.SliceBytes(src)) }

	var b strings.Builder
	var sources []*hclsyntax.Block
	var provisioners []string
	for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
		switch blk.Type {
		case "variable", "locals":
			fmt.Fprintf(&b, "%s\n\n", text(blk.Range()))
		case "source":
			sources = append(sources, blk)
		case "build":
			for _, p := range blk.Body.Blocks {
				if p.Type == "provisioner" {
					provisioners = append(provisioners, text(p.Range()))
				}
			}
		}
	}
	if len(sources) != 1 {
		return "", fmt.Errorf("null template: %s has %d source blocks, want 1", path, len(sources))
	}

	var comm []*hclsyntax.Attribute
	for _, a := range sources[0].Body.Attributes {
		if a.Name == "communicator" || strings.HasPrefix(a.Name, "ssh_") || strings.HasPrefix(a.Name, "winrm_") {
			comm = append(comm, a)
		}
	}
	if len(comm) == 0 {
		return "", fmt.Errorf("null template: the source block of %s has no communicator settings", path)
	}
	slices.SortFunc(comm, func(x, y *hclsyntax.Attribute) int { return x.SrcRange.Start.Byte - y.SrcRange.Start.Byte })
	b.WriteString("source \"null\" \"bench\" {\n")
	if !slices.ContainsFunc(comm, func(a *hclsyntax.Attribute) bool { return a.Name == "communicator" }) {
		b.WriteString("  communicator = \"ssh\"\n")
	}
	for _, a := range comm {
		fmt.Fprintf(&b, "  %s\n", text(a.SrcRange))
	}
	b.WriteString("}\n\nbuild {\n  sources = [\"source.null.bench\"]\n")
	for _, p := range provisioners {
		fmt.Fprintf(&b, "\n  %s\n", p)
	}
	b.WriteString("}\n")
	return b.String(), nil
}
