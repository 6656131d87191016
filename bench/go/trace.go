package main

// Per-call timestamps for bench/hops.py (-trace): wall-clock ns, the clock the
// Python side uses too (time.time_ns), so that the processes' stamps line up.

import (
	"sync"
	"time"
)

type stamps struct {
	on   bool
	mu   sync.Mutex
	rows [][]int64
}

func nowNs() int64 { return time.Now().UnixNano() }

// add keeps one row of stamps; a no-op unless -trace was given.
func (s *stamps) add(row ...int64) {
	if !s.on {
		return
	}
	s.mu.Lock()
	s.rows = append(s.rows, row)
	s.mu.Unlock()
}
