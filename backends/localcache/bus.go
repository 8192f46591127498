package localcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// A Bus carries purges and clears between the instances of an application
// that each keep pages in a [Store] of their own, such as a [MemoryStore]:
// give it to [NewBackend] with [WithBus], so that every purge the
// dispatcher delivers on one instance is published, and run [Follow] on
// every instance, so that each applies the purges the others publish.
//
// Implementations: redisstore.NewBus (Redis pub/sub) and natsbus.New
// (NATS), in modules of their own. To write another, use a [Wire] to frame
// events; the package's bustest kit checks the contract.
type Bus interface {
	// Publish sends e, an EventPurge or an EventClear, to every other
	// instance subscribed to the bus. It returns nil only once the bus's
	// server has accepted the event, and an error otherwise, so that the
	// dispatcher retries the purge. A purge too large for one message is
	// split into several. Publish is safe for concurrent use.
	Publish(ctx context.Context, e Event) error
	// Subscribe starts a subscription to the events other instances
	// publish (never this instance's own). Its first event is EventUp once
	// it receives.
	Subscribe(ctx context.Context) (Subscription, error)
}

// A Subscription delivers the events other instances publish on a [Bus],
// and says when some may have been lost. One goroutine calls Next.
type Subscription interface {
	// Next returns the next event: EventUp when the subscription starts
	// receiving (at first, and after every EventDown), EventDown when
	// events may be lost from now until the next EventUp (the connection
	// broke, the server or client dropped messages for a slow consumer, a
	// health check went unanswered), and the EventPurge and EventClear
	// events published by other instances in between. It returns an error
	// only when ctx is done or the subscription is closed or cannot go
	// on; the caller then closes it and subscribes again.
	Next(ctx context.Context) (Event, error)
	// Close ends the subscription and releases what it holds.
	Close(ctx context.Context) error
}

// EventKind says what an [Event] is.
type EventKind uint8

// The kinds of [Event]. EventPurge and EventClear travel on the bus;
// EventUp and EventDown are a [Subscription]'s own.
const (
	// EventPurge asks every instance to purge Event.Indexes (see
	// [Store.Purge]).
	EventPurge EventKind = iota + 1
	// EventClear asks every instance to clear its store.
	EventClear
	// EventDown says events may be lost until the next EventUp.
	EventDown
	// EventUp says the subscription receives every event from now on.
	EventUp
)

// String returns the kind's name, such as "purge".
func (k EventKind) String() string {
	switch k {
	case EventPurge:
		return "purge"
	case EventClear:
		return "clear"
	case EventDown:
		return "down"
	case EventUp:
		return "up"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// An Event is a purge or clear published on a [Bus], or a change in a
// [Subscription]'s state.
type Event struct {
	Kind EventKind
	// Indexes are the index keys an EventPurge removes, as [Backend]
	// computes them from URLs and tags.
	Indexes []string
	// Origin names the instance that published the event, and Seq counts
	// the messages it has published, from 1, without gaps: a [Wire] sets
	// both. [Follow] clears its store when an origin's Seq skips a number.
	// Both are empty in EventUp and EventDown.
	Origin string
	Seq    uint64
	// Reason says why an EventDown came, for logs.
	Reason string
}

// wireVersion is the version of the message format a [Wire] writes.
const wireVersion = 1

// wireOverhead bounds the bytes of a message besides its indexes.
const wireOverhead = 128

// message is the JSON form of an EventPurge or EventClear on a bus.
type message struct {
	V       int      `json:"v"`
	Origin  string   `json:"o"`
	Seq     uint64   `json:"s"`
	Kind    string   `json:"k"`
	Indexes []string `json:"i,omitempty"`
}

// A Wire frames the events one instance publishes on a [Bus] and reads
// those of others: it names the instance with a random origin, numbers its
// messages, splits large purges, and decodes messages, recognising the
// instance's own. Bus implementations use one Wire per instance, shared by
// Publish and Subscribe. It is safe for concurrent use.
type Wire struct {
	origin string

	mu  sync.Mutex // held while a message is numbered and sent
	seq uint64
}

// NewWire returns a Wire with a new random origin.
func NewWire() (*Wire, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("localcache: bus origin: %w", err)
	}
	return &Wire{origin: hex.EncodeToString(b[:])}, nil
}

// Origin returns the name this instance's messages carry.
func (w *Wire) Origin() string { return w.origin }

// Skip uses up a message number without sending anything: a Bus calls it
// when it refuses a publish before sending (its connection is down), so
// that the next message shows the other instances a gap and they clear
// their stores, as they do after a failed send.
func (w *Wire) Skip() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
}

// ErrEventTooLarge is returned by [Wire.Publish] when one index of a purge
// does not fit in a message of the bus's maximum size.
var ErrEventTooLarge = errors.New("localcache: event larger than the bus's maximum message size")

// Publish encodes e, an EventPurge or EventClear, into messages of at most
// maxBytes each (a purge with many indexes becomes several), numbers them
// and calls send for each in order, holding a lock so that the messages of
// concurrent calls are numbered in the order they are sent. It returns
// send's first error. maxBytes must leave room for the longest index plus
// a small header.
func (w *Wire) Publish(e Event, maxBytes int, send func([]byte) error) error {
	var chunks [][]string
	switch e.Kind {
	case EventClear:
		chunks = [][]string{nil}
	case EventPurge:
		var err error
		if chunks, err = split(e.Indexes, maxBytes-wireOverhead); err != nil {
			return err
		}
	default:
		return fmt.Errorf("localcache: cannot publish a %s event: only purge and clear travel on a bus", e.Kind)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ixs := range chunks {
		w.seq++
		b, err := json.Marshal(message{V: wireVersion, Origin: w.origin, Seq: w.seq, Kind: e.Kind.String(), Indexes: ixs})
		if err != nil {
			return fmt.Errorf("localcache: encode %s event: %w", e.Kind, err)
		}
		if err := send(b); err != nil {
			return err
		}
	}
	return nil
}

// split cuts indexes into groups whose JSON fits in room bytes.
func split(indexes []string, room int) ([][]string, error) {
	var (
		chunks [][]string
		cur    []string
		size   int
	)
	for _, ix := range indexes {
		n := jsonLen(ix) + 1
		if n > room {
			return nil, fmt.Errorf("%w: an index of %d bytes", ErrEventTooLarge, len(ix))
		}
		if size+n > room && len(cur) > 0 {
			chunks, cur, size = append(chunks, cur), nil, 0
		}
		cur = append(cur, ix)
		size += n
	}
	if len(cur) > 0 || len(chunks) == 0 {
		chunks = append(chunks, cur)
	}
	return chunks, nil
}

// jsonLen returns the length of s encoded as a JSON string.
func jsonLen(s string) int {
	b, _ := json.Marshal(s) // a string always encodes
	return len(b)
}

// Decode reads a message published on the bus. It returns false for this
// Wire's own messages, which the caller drops, and an error for a message
// that is not an event of this format.
func (w *Wire) Decode(b []byte) (Event, bool, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return Event{}, false, fmt.Errorf("localcache: bus message is not an event: %w", err)
	}
	if m.V != wireVersion {
		return Event{}, false, fmt.Errorf("localcache: bus message of version %d, want %d (instances of different gormpurge versions on one bus?)", m.V, wireVersion)
	}
	e := Event{Origin: m.Origin, Seq: m.Seq, Indexes: m.Indexes}
	switch m.Kind {
	case "purge":
		e.Kind = EventPurge
	case "clear":
		e.Kind = EventClear
		e.Indexes = nil
	default:
		return Event{}, false, fmt.Errorf("localcache: bus message of unknown kind %q", m.Kind)
	}
	if m.Origin == "" || m.Seq == 0 {
		return Event{}, false, errors.New("localcache: bus message without origin or sequence number")
	}
	return e, m.Origin != w.origin, nil
}
