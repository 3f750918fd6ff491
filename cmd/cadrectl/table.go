package main

import (
	"io"
	"strings"
	"unicode/utf8"
)

// renderTable writes the box-drawn table etcdctl prints for -w table
// (tablewriter v1 defaults as etcdctl configures them): headers upper-cased
// and centred, cells right-aligned, one space of padding each side, and no
// separator line when there are no rows. A cell holding newlines spans
// several lines.
//
// Widths count runes, which matches tablewriter for the ASCII and
// narrow-Unicode text these tables hold (IDs, URLs, numbers).
func renderTable(w io.Writer, header []string, rows [][]string) {
	ncol := len(header)
	for _, r := range rows {
		ncol = max(ncol, len(r))
	}
	head := make([]string, ncol)
	for i, h := range header {
		head[i] = strings.ToUpper(strings.TrimSpace(h))
	}
	widths := make([]int, ncol)
	measure := func(cells []string) {
		for i, c := range cells {
			for _, line := range strings.Split(c, "\n") {
				widths[i] = max(widths[i], utf8.RuneCountInString(line))
			}
		}
	}
	measure(head)
	body := make([][]string, len(rows))
	for i, r := range rows {
		body[i] = make([]string, ncol)
		for j, c := range r {
			body[i][j] = strings.TrimSpace(c)
		}
		measure(body[i])
	}

	var sb strings.Builder
	border := func(left, mid, right string) {
		sb.WriteString(left)
		for i, wd := range widths {
			if i > 0 {
				sb.WriteString(mid)
			}
			sb.WriteString(strings.Repeat("─", wd+2))
		}
		sb.WriteString(right)
		sb.WriteByte('\n')
	}
	line := func(cells []string, align func(string, int) string) {
		height := 1
		split := make([][]string, len(cells))
		for i, c := range cells {
			split[i] = strings.Split(c, "\n")
			height = max(height, len(split[i]))
		}
		for l := 0; l < height; l++ {
			sb.WriteString("│")
			for i, wd := range widths {
				text := ""
				if l < len(split[i]) {
					text = split[i][l]
				}
				sb.WriteString(" ")
				sb.WriteString(align(text, wd))
				sb.WriteString(" │")
			}
			sb.WriteByte('\n')
		}
	}

	border("┌", "┬", "┐")
	line(head, padCenter)
	if len(body) > 0 {
		border("├", "┼", "┤")
		for _, r := range body {
			line(r, padLeft)
		}
	}
	border("└", "┴", "┘")
	io.WriteString(w, sb.String())
}

// padCenter centres s in width; an odd leftover space goes to the right.
func padCenter(s string, width int) string {
	gap := width - utf8.RuneCountInString(s)
	if gap <= 0 {
		return s
	}
	return strings.Repeat(" ", gap/2) + s + strings.Repeat(" ", gap-gap/2)
}

// padLeft right-aligns s in width.
func padLeft(s string, width int) string {
	gap := width - utf8.RuneCountInString(s)
	if gap <= 0 {
		return s
	}
	return strings.Repeat(" ", gap) + s
}
