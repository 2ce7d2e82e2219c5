package server

import (
	"sync"

	"github.com/img2vid/img2vid"
)

// streamCount counts the open event streams, per client and in all. Each
// stream holds a goroutine and a connection's descriptor for as long as
// its job runs, so without a cap one client could open enough of them (a
// review opened 1000 on one job) to leave no descriptor for anyone else's
// requests. The zero value counts nothing yet.
type streamCount struct {
	mu       sync.Mutex
	byClient map[string]int
	total    int
}

// open counts a new stream of client, or refuses it with too_many_streams
// when client, or the server, already has as many open as lim allows. The
// stream counts until the returned function is called.
func (n *streamCount) open(client string, lim img2vid.Limits) (closed func(), err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch mine := n.byClient[client]; {
	case img2vid.Over(mine+1, lim.StreamsPerClient):
		return nil, lim.Refuse(ETOOMANYSTREAMS, img2vid.LimitStreamsPerClient, "this client already has %d event streams open", mine)
	case img2vid.Over(n.total+1, lim.Streams):
		return nil, lim.Refuse(ETOOMANYSTREAMS, img2vid.LimitStreams, "the server already has %d event streams open", n.total)
	}
	if n.byClient == nil {
		n.byClient = map[string]int{}
	}
	n.byClient[client]++
	n.total++
	return func() { n.close(client) }, nil
}

// close takes one stream of client off the count.
func (n *streamCount) close(client string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.total--
	if n.byClient[client]--; n.byClient[client] <= 0 {
		delete(n.byClient, client)
	}
}
