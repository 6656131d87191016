//go:build tools

// Package nsqtools pins the NSQ apps we build so that `go mod tidy` keeps their dependencies.
package nsqtools

import (
	_ "github.com/nsqio/nsq/apps/nsq_tail"
	_ "github.com/nsqio/nsq/apps/nsqd"
	_ "github.com/nsqio/nsq/apps/nsqlookupd"
	_ "github.com/nsqio/nsq/apps/to_nsq"
)
