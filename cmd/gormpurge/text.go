package main

import "strconv"

// plural returns one or many for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// countOf returns n with its noun: "1 node", "3 nodes".
func countOf(n int, one, many string) string {
	return strconv.Itoa(n) + " " + plural(n, one, many)
}
