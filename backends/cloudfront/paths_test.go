package cloudfront_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
)

func TestCheckTagAndTagItem(t *testing.T) {
	for _, tc := range []struct {
		tag     string
		item    string
		wantErr error
	}{
		{tag: "product-42", item: "#product-42"},
		{tag: "ends-in*", item: "#ends-in*"},
		{tag: strings.Repeat("x", cloudfront.MaxTagLength), item: "#" + strings.Repeat("x", cloudfront.MaxTagLength)},
		{tag: strings.Repeat("x", cloudfront.MaxTagLength+1), wantErr: cloudfront.ErrNotInvalidatable},
		{tag: "caf\u00e9", wantErr: cloudfront.ErrNotInvalidatable},
		{tag: "a b", wantErr: backends.ErrInvalidTag},
		{tag: "", wantErr: backends.ErrInvalidTag},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			err := cloudfront.CheckTag(tc.tag)
			item, itemErr := cloudfront.TagItem(tc.tag)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				assert.ErrorIs(t, itemErr, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, itemErr)
			assert.Equal(t, tc.item, item)
		})
	}
}
