package jobs

// Follow returns the job's state as this process's board holds it, and a
// channel closed at its next change, without a round trip to NATS. It is
// for following a job already read with Job: the board's one watcher
// brings each change once, for everyone who follows, so that any number
// of event streams on a job cost no more reads than one. Read the job
// with Job first, then Follow it: Job puts a job submitted through another
// replica a moment ago on the board, and from then on the watcher keeps
// it there; a watcher that falls behind is replaced, and its successor
// brings what was missed.
func (s *System) Follow(id string) (State, <-chan struct{}, bool) { return s.board.get(id) }
