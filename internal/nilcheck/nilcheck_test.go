package nilcheck_test

import (
	"io"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

func TestIsNil(t *testing.T) {
	var (
		nilReader io.Reader
		nilPtr    *strings.Reader
		nilMap    map[string]int
		nilSlice  []int
		nilFunc   func()
		nilChan   chan int
		nilUnsafe unsafe.Pointer
		zero      int
	)
	tests := []struct {
		name string
		v    any
		want bool
	}{
		{"untyped nil", nil, true},
		{"nil interface", nilReader, true},
		{"typed nil pointer", nilPtr, true},
		{"typed nil pointer in an interface", io.Reader(nilPtr), true},
		{"nil map", nilMap, true},
		{"nil slice", nilSlice, true},
		{"nil func", nilFunc, true},
		{"nil chan", nilChan, true},
		{"nil unsafe.Pointer", nilUnsafe, true},
		{"pointer", strings.NewReader(""), false},
		{"empty map", map[string]int{}, false},
		{"empty slice", []int{}, false},
		{"func", func() {}, false},
		{"chan", make(chan int), false},
		{"pointer to a zero value", &zero, false},
		{"zero int", 0, false},
		{"empty string", "", false},
		{"zero struct", struct{}{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, nilcheck.IsNil(tt.v))
		})
	}
}
