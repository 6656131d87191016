package main

// The produce/consume roles. Every message body is the JSON
// {"seq": i, "text": "hello"} for i in 0..n-1 (spelled as Python's
// json.dumps spells it).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	nsq "github.com/nsqio/go-nsq"
)

func appendBody(dst []byte, seq int) []byte {
	dst = append(dst, `{"seq": `...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	return append(dst, `, "text": "hello"}`...)
}

// -------------------------------------------------------------- consume

type counter struct {
	n        int
	seen     []atomic.Bool
	received atomic.Int64
	unique   atomic.Int64
	invalid  atomic.Int64
	firstNs  atomic.Int64
	lastNs   atomic.Int64
	complete chan struct{}
}

func (c *counter) HandleMessage(m *nsq.Message) error {
	now := time.Now().UnixNano()
	c.received.Add(1)
	c.firstNs.CompareAndSwap(0, now)
	for {
		old := c.lastNs.Load()
		if now <= old || c.lastNs.CompareAndSwap(old, now) {
			break
		}
	}
	var body struct {
		Seq *int `json:"seq"`
	}
	if err := json.Unmarshal(m.Body, &body); err != nil || body.Seq == nil ||
		*body.Seq < 0 || *body.Seq >= c.n {
		c.invalid.Add(1)
		return nil
	}
	if c.seen[*body.Seq].CompareAndSwap(false, true) {
		if c.unique.Add(1) == int64(c.n) {
			close(c.complete)
		}
	}
	return nil
}

type consumeResult struct {
	Role        string  `json:"role"`
	N           int     `json:"n"`
	Received    int64   `json:"received"`
	Unique      int64   `json:"unique"`
	Missing     int64   `json:"missing"`
	Invalid     int64   `json:"invalid"`
	FirstRecvNs int64   `json:"first_recv_ns"`
	LastRecvNs  int64   `json:"last_recv_ns"`
	ElapsedS    float64 `json:"elapsed_s"`
	MsgsPerS    float64 `json:"msgs_per_s"`
	TimedOut    bool    `json:"timed_out"`
	Buffered    bool    `json:"buffered"`
	MaxInFlight int     `json:"max_in_flight"`
}

func runConsume(args []string) error {
	var c common
	fs := flag.NewFlagSet("consume", flag.ExitOnError)
	c.register(fs)
	topic := fs.String("topic", "", "topic to consume")
	channel := fs.String("channel", "bench", "channel to subscribe with")
	n := fs.Int("n", 100000, "expected messages: seq 0..n-1")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after this long (counted from READY)")
	maxInFlight := fs.Int("max-in-flight", 200, "consumer MaxInFlight (RDY)")
	handlers := fs.Int("handlers", 1, "concurrent handler goroutines")
	noBuffer := fs.Bool("no-buffer", false, "ask nsqd not to buffer output (output_buffer_size -1); default: go-nsq's defaults (16 KiB, 250 ms)")
	fs.Parse(args)
	if *topic == "" {
		return errors.New("-topic is required")
	}
	if *n < 1 {
		return errors.New("-n must be at least 1")
	}

	sigs := stopSignals()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = *maxInFlight
	if *noBuffer {
		cfg = unbufferedConfig(*maxInFlight)
	}
	cnt := &counter{n: *n, seen: make([]atomic.Bool, *n), complete: make(chan struct{})}
	cons, err := newConsumer(&c, *topic, *channel, cfg)
	if err != nil {
		return err
	}
	cons.AddConcurrentHandlers(cnt, *handlers)
	if err := cons.ConnectToNSQD(c.nsqd); err != nil {
		return fmt.Errorf("subscribe %s/%s: %w", *topic, *channel, err)
	}
	// Messages published before nsqd handles the SUB wait in the topic.
	printReady()
	log.Printf("consume: subscribed to %s/%s, waiting for %d messages", *topic, *channel, *n)

	timedOut := false
	select {
	case <-cnt.complete:
	case <-time.After(*timeout):
		timedOut = true
		log.Printf("consume: timed out after %v", *timeout)
	case sig := <-sigs:
		log.Printf("consume: %v, stopping", sig)
	}
	out := consumeResult{
		Role:        "consume",
		N:           *n,
		Received:    cnt.received.Load(),
		Unique:      cnt.unique.Load(),
		Invalid:     cnt.invalid.Load(),
		FirstRecvNs: cnt.firstNs.Load(),
		LastRecvNs:  cnt.lastNs.Load(),
		TimedOut:    timedOut,
		Buffered:    !*noBuffer,
		MaxInFlight: *maxInFlight,
	}
	out.Missing = int64(*n) - out.Unique
	if out.LastRecvNs > out.FirstRecvNs {
		out.ElapsedS = float64(out.LastRecvNs-out.FirstRecvNs) / 1e9
		out.MsgsPerS = float64(out.Unique) / out.ElapsedS
	}
	cons.Stop()
	select {
	case <-cons.StopChan:
	case <-time.After(5 * time.Second):
	}
	printResult(out)
	return nil
}

// -------------------------------------------------------------- produce

type produceResult struct {
	Role        string  `json:"role"`
	N           int     `json:"n"`
	Batch       int     `json:"batch"`
	InFlight    int     `json:"in_flight"`
	Errors      int64   `json:"errors"`
	FirstSendNs int64   `json:"first_send_ns"`
	LastSendNs  int64   `json:"last_send_ns"`
	LastAckNs   int64   `json:"last_ack_ns"`
	ElapsedS    float64 `json:"elapsed_s"`
	MsgsPerS    float64 `json:"msgs_per_s"`
}

func runProduce(args []string) error {
	var c common
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	c.register(fs)
	topic := fs.String("topic", "", "topic to publish to")
	n := fs.Int("n", 100000, "messages to publish")
	batch := fs.Int("batch", 0, "0: one PUB per message; K>0: MPUB of K messages")
	inFlight := fs.Int("in-flight", 0, "PUB/MPUB commands awaiting nsqd's OK at once; 0 = 200 for -batch 0, 1 for -batch K")
	fs.Parse(args)
	if *topic == "" {
		return errors.New("-topic is required")
	}
	if *n < 1 || *batch < 0 {
		return errors.New("-n must be at least 1 and -batch at least 0")
	}
	// One PUB per message is sent with PublishAsync, at most 200 commands
	// waiting for their OK at once: go-nsq pipelines them on its single
	// connection the way a pipelining client would, while a plain
	// synchronous Publish would measure one round trip per message. MPUB
	// batches go one at a time by default (each a synchronous
	// MultiPublish, in effect), as -batch K asks.
	if *inFlight <= 0 {
		*inFlight = 200
		if *batch > 0 {
			*inFlight = 1
		}
	}

	prod, err := newProducer(&c)
	if err != nil {
		return err
	}
	defer prod.Stop()

	var errs atomic.Int64
	slots := make(chan struct{}, *inFlight)
	done := make(chan *nsq.ProducerTransaction, *inFlight)
	var collector sync.WaitGroup
	collector.Add(1)
	go func() {
		defer collector.Done()
		for t := range done {
			if t.Error != nil {
				errs.Add(int64(t.Args[0].(int)))
				log.Printf("produce: %v", t.Error)
			}
			<-slots
		}
	}()

	per := *batch
	if per == 0 {
		per = 1
	}
	bodies := make([][]byte, 0, per)
	start := time.Now()
	firstNs := start.UnixNano()
	var lastSendNs int64
	for i := 0; i < *n; i += per {
		k := min(per, *n-i)
		bodies = bodies[:0]
		for j := 0; j < k; j++ {
			bodies = append(bodies, appendBody(make([]byte, 0, 40), i+j))
		}
		slots <- struct{}{}
		lastSendNs = time.Now().UnixNano()
		if *batch == 0 {
			err = prod.PublishAsync(*topic, bodies[0], done, k)
		} else {
			// go-nsq encodes the MPUB before returning, so bodies may
			// be reused for the next batch.
			err = prod.MultiPublishAsync(*topic, bodies, done, k)
		}
		if err != nil {
			errs.Add(int64(k))
			log.Printf("produce: %v", err)
			<-slots
		}
	}
	// Every slot taken back means every command has had its answer.
	for j := 0; j < *inFlight; j++ {
		slots <- struct{}{}
	}
	elapsed := time.Since(start)
	lastAckNs := time.Now().UnixNano()
	close(done)
	collector.Wait()

	sent := int64(*n) - errs.Load()
	printResult(produceResult{
		Role:        "produce",
		N:           *n,
		Batch:       *batch,
		InFlight:    *inFlight,
		Errors:      errs.Load(),
		FirstSendNs: firstNs,
		LastSendNs:  lastSendNs,
		LastAckNs:   lastAckNs,
		ElapsedS:    elapsed.Seconds(),
		MsgsPerS:    float64(sent) / elapsed.Seconds(),
	})
	return nil
}
