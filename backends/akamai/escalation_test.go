package akamai_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// A handoff of more URLs than the escalation allows becomes one purge of
// the site's CP code; a smaller one is purged URL by URL.
func TestEscalationToAllPurgesTheCPCodes(t *testing.T) {
	tests := []struct {
		name      string
		urls      int
		escalated bool
	}{
		{"600 URLs", 600, true},
		{"400 URLs", 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{
				backend:  []akamai.Option{akamai.WithCPCodes(12345)},
				dispatch: []dispatcher.Option{dispatcher.WithEscalation("akamai", dispatcher.Escalation{Above: 500, All: true})},
			})
			urls := make([]string, tt.urls)
			for i := range urls {
				urls[i] = fmt.Sprintf("/posts/%d", i)
			}
			f.purge(t, backends.NewRequest(urls, nil))

			reports := f.Reports()
			require.NotEmpty(t, reports)
			for _, r := range reports {
				assert.Equal(t, dispatcher.Delivered, r.Outcome)
				assert.Equal(t, tt.escalated, r.All)
			}
			s, _ := f.d.Stats().Backend("akamai")
			if tt.escalated {
				purges := f.srv.Purges()
				require.Len(t, purges, 1, "one purge of the CP code")
				assert.Equal(t, akamai.KindCPCode, purges[0].Kind)
				assert.Equal(t, []string{"12345"}, purges[0].Objects)
				assert.Empty(t, f.srv.Objects(akamai.KindURL), "no URL purges")
				assert.Equal(t, uint64(1), s.Escalated)
				assert.Equal(t, uint64(600), s.EscalatedURLs)
				return
			}
			assert.Len(t, f.srv.Objects(akamai.KindURL), tt.urls)
			assert.Empty(t, f.srv.Objects(akamai.KindCPCode), "no CP code purge")
			assert.Zero(t, s.Escalated)
		})
	}
}

func TestPurgeAllNeedsCPCodes(t *testing.T) {
	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	b, err := akamai.New(akamai.WithCredentials(srv.Credentials()), akamai.WithHTTPClient(srv.Client()))
	require.NoError(t, err)

	err = b.CanPurgeAll()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "akamai.WithCPCodes")
	_, err = b.PurgeAll(t.Context())
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	assert.Empty(t, srv.Purges())

	d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithEscalation("akamai", dispatcher.Escalation{Above: 500, All: true}))
	assert.Nil(t, d)
	require.EqualError(t, err,
		"dispatcher: invalid configuration:\n"+
			`WithEscalation("akamai", ...): All: the backend cannot purge everything: `+
			"akamai: purging everything needs CP codes: pass akamai.WithCPCodes(...)")

	withCodes, err := akamai.New(akamai.WithCredentials(srv.Credentials()), akamai.WithHTTPClient(srv.Client()),
		akamai.WithCPCodes(12345, 98765, 12345))
	require.NoError(t, err)
	require.NoError(t, withCodes.CanPurgeAll())
	res, err := withCodes.PurgeAll(t.Context())
	require.NoError(t, err)
	assert.NotEmpty(t, res.IDs["purgeId"])
	assert.Equal(t, []string{"12345", "98765"}, srv.Objects(akamai.KindCPCode))
}

// Fast Purge purges tags whatever the settings: the backend says so, and
// accepts an escalation to tags.
func TestCanPurgeTags(t *testing.T) {
	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	b, err := akamai.New(akamai.WithCredentials(srv.Credentials()), akamai.WithHTTPClient(srv.Client()))
	require.NoError(t, err)

	var bb backends.Backend = b
	tp, ok := bb.(backends.TagPurger)
	require.True(t, ok, "*akamai.Backend implements backends.TagPurger")
	assert.NoError(t, tp.CanPurgeTags())
	d, err := dispatcher.New([]backends.Backend{b},
		dispatcher.WithEscalation("akamai", dispatcher.Escalation{Above: 500, Tags: []string{"site"}}))
	require.NoError(t, err)
	require.NoError(t, d.Close(t.Context()))
}
