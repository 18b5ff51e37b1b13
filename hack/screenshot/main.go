// Command screenshot renders a pull request's comment, as meshctl's GitHub
// Action posts it, to HTML with a GitHub-flavoured Markdown library, so
// that `make screenshot` can take a picture of it with headless Chromium
// for README's "In pull requests". It is a module of its own, so that the
// Markdown library does not enter meshctl's dependencies.
//
// Usage: screenshot < comment.md > comment.html
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// page frames the comment as GitHub shows one: a box with a header, in its
// sans-serif and monospace fonts and colours.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>meshctl diff</title><style>
body { margin: 0; padding: 24px; background: #fff; font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #1f2328; }
.comment { max-width: 880px; border: 1px solid #d1d9e0; border-radius: 6px; }
.header { padding: 8px 16px; background: #f6f8fa; border-bottom: 1px solid #d1d9e0; border-radius: 6px 6px 0 0; color: #59636e; }
.header b { color: #1f2328; }
.body { padding: 16px; }
h3 { font-size: 1.25em; margin: 0 0 16px; }
h4 { font-size: 1em; margin: 24px 0 12px; }
code { font: 85% ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eff1f3; padding: .2em .4em; border-radius: 6px; }
pre { background: #f6f8fa; padding: 16px; border-radius: 6px; overflow: auto; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: 0 0 16px; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; }
blockquote { margin: 0 0 16px; padding: 0 1em; color: #59636e; border-left: .25em solid #d1d9e0; }
ul { padding-left: 2em; }
details summary { cursor: pointer; }
</style></head><body><div class="comment"><div class="header"><b>github-actions</b> bot commented</div><div class="body">
{{comment}}</div></div></body></html>
`

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "screenshot: %v\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	src, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// GitHub's flavour: tables, strikethrough, autolinks, task lists; and
	// the raw HTML of <details>, which GitHub keeps.
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))
	var b bytes.Buffer
	if err := md.Convert(src, &b); err != nil {
		return err
	}
	_, err = io.WriteString(out, strings.Replace(page, "{{comment}}", b.String(), 1))
	return err
}
