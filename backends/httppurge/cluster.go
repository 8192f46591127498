package httppurge

import (
	"context"
	"errors"
	"fmt"

	"github.com/gormpurge/gormpurge/backends"
)

// Cluster is a fixed list of cache nodes as one [Backend] per node, so that
// the dispatcher gives each node its own queue, workers, retries and report:
// a node that is down for an hour holds up nothing but its own purges. Make
// one with [NewCluster] and give [Cluster.Backends] to dispatcher.New: the
// dispatcher's Close closes each node's Backend after draining. Close the
// Cluster yourself only when you use it without a dispatcher.
type Cluster struct {
	nodes []*Backend
}

var _ backends.Closer = (*Cluster)(nil)

// NewCluster returns a Cluster of the nodes named with [WithNodes], each a
// Backend configured by opts and named "<name>@<host:port>", such as
// "varnish@10.0.0.5:6081". It returns an error naming each invalid setting;
// [WithDiscovery] is refused, since the dispatcher's backends are fixed when
// it starts: use [New] for a cluster whose nodes change.
func NewCluster(opts ...Option) (*Cluster, error) {
	cfg := newConfig(opts)
	nodes, err := cfg.validate()
	if err == nil && cfg.discoverSet {
		err = errors.New("WithDiscovery: a Cluster has a fixed list of nodes; use New for nodes that change")
	}
	if err != nil {
		return nil, fmt.Errorf("httppurge: invalid configuration:\n%w", err)
	}
	c := &Cluster{}
	for _, n := range nodes {
		one := cfg
		one.name = cfg.name + "@" + n.host
		c.nodes = append(c.nodes, newBackend(one, []*node{n}))
	}
	return c, nil
}

// Backends returns one Backend per node, in the order given to WithNodes,
// for dispatcher.New.
func (c *Cluster) Backends() []backends.Backend {
	bs := make([]backends.Backend, len(c.nodes))
	for i, b := range c.nodes {
		bs[i] = b
	}
	return bs
}

// Close closes every node's Backend; see [Backend.Close]. It implements
// [backends.Closer].
func (c *Cluster) Close(ctx context.Context) error {
	var errs []error
	for _, b := range c.nodes {
		errs = append(errs, b.Close(ctx))
	}
	return errors.Join(errs...)
}
