package main

// The RPC roles: serve (responder) and call (requester).
//
// Wire format, as almanet's RPC uses it:
//
//	invocation, published to the procedure's topic:
//	  {"id": "<32 hex>", "caller_id": "<hex>", "payload": "Aidar", "reply_topic": "<topic>"}
//	reply, published to the invocation's reply_topic:
//	  {"call_id": "<id>", "is_error": false, "payload": "Hello, Aidar!"}

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	nsq "github.com/nsqio/go-nsq"
)

type invocation struct {
	ID         string          `json:"id"`
	CallerID   string          `json:"caller_id"`
	Payload    json.RawMessage `json:"payload"`
	ReplyTopic string          `json:"reply_topic"`
}

type reply struct {
	CallID  string `json:"call_id"`
	IsError bool   `json:"is_error"`
	Payload any    `json:"payload"`
}

// ---------------------------------------------------------------- serve

type server struct {
	prod     *nsq.Producer
	received atomic.Int64
	replied  atomic.Int64
	errors   atomic.Int64
	trace    stamps // handler start, before Publish, after Publish (nsqd's OK)
}

// HandleMessage answers one invocation. A malformed one is counted and
// FINed (returning nil), never requeued: requeueing would only loop.
func (s *server) HandleMessage(m *nsq.Message) error {
	t0 := nowNs()
	s.received.Add(1)
	var inv invocation
	if err := json.Unmarshal(m.Body, &inv); err != nil || inv.ID == "" || inv.ReplyTopic == "" {
		s.errors.Add(1)
		log.Printf("serve: bad invocation %q: %v", m.Body, err)
		return nil
	}
	out := reply{CallID: inv.ID}
	var name string
	if err := json.Unmarshal(inv.Payload, &name); err != nil {
		out.IsError = true
		out.Payload = "payload is not a string"
	} else {
		out.Payload = "Hello, " + name + "!"
	}
	body, err := json.Marshal(out)
	if err != nil {
		s.errors.Add(1)
		return nil
	}
	t1 := nowNs()
	if err := s.prod.Publish(inv.ReplyTopic, body); err != nil {
		s.errors.Add(1)
		log.Printf("serve: publish reply to %s: %v", inv.ReplyTopic, err)
		return nil
	}
	s.trace.add(t0, t1, nowNs())
	s.replied.Add(1)
	return nil
}

type serveResult struct {
	Role     string    `json:"role"`
	Received int64     `json:"received"`
	Replied  int64     `json:"replied"`
	Errors   int64     `json:"errors"`
	Trace    [][]int64 `json:"trace,omitempty"`
}

func runServe(args []string) error {
	var c common
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	c.register(fs)
	topic := fs.String("topic", "", "topic the invocations arrive on (the procedure's URI topic)")
	channel := fs.String("channel", "rpc", "channel to subscribe with")
	maxInFlight := fs.Int("max-in-flight", 200, "consumer MaxInFlight (RDY)")
	handlers := fs.Int("handlers", 200, "concurrent handler goroutines; each publishes its reply synchronously")
	trace := fs.Bool("trace", false, "print per-invocation timestamps (for bench/hops.py)")
	fs.Parse(args)
	if *topic == "" {
		return errors.New("-topic is required")
	}

	sigs := stopSignals()
	prod, err := newProducer(&c)
	if err != nil {
		return err
	}
	defer prod.Stop()

	s := &server{prod: prod}
	s.trace.on = *trace
	cons, err := newConsumer(&c, *topic, *channel, unbufferedConfig(*maxInFlight))
	if err != nil {
		return err
	}
	cons.AddConcurrentHandlers(s, *handlers)
	if err := cons.ConnectToNSQD(c.nsqd); err != nil {
		return fmt.Errorf("subscribe %s/%s: %w", *topic, *channel, err)
	}
	// ConnectToNSQD has done IDENTIFY and written SUB. Invocations
	// published before nsqd handles the SUB wait in the topic for the
	// channel, so none are lost by saying READY now.
	printReady()
	log.Printf("serve: subscribed to %s/%s on %s", *topic, *channel, c.nsqd)

	select {
	case sig := <-sigs:
		log.Printf("serve: %v, stopping", sig)
	case <-cons.StopChan:
		log.Printf("serve: consumer stopped")
	}
	cons.Stop()
	select {
	case <-cons.StopChan:
	case <-time.After(5 * time.Second):
		log.Printf("serve: consumer did not stop within 5s")
	}
	printResult(serveResult{
		Role:     "serve",
		Received: s.received.Load(),
		Replied:  s.replied.Load(),
		Errors:   s.errors.Load(),
		Trace:    s.trace.rows,
	})
	return nil
}

// ----------------------------------------------------------------- call

var errTimeout = errors.New("call timed out")

type replyArrival struct {
	at      time.Time
	isError bool
}

type caller struct {
	prod       *nsq.Producer
	uriTopic   string
	replyTopic string
	callerID   string

	mu      sync.Mutex
	pending map[string]chan replyArrival

	late      atomic.Int64 // replies for no pending call (timed out before)
	malformed atomic.Int64
	trace     stamps // before PUB, reply in the handler, caller resumed
}

// HandleMessage takes a reply off the reply topic and hands it to the call
// waiting for it. The arrival time is taken first thing.
func (c *caller) HandleMessage(m *nsq.Message) error {
	now := time.Now()
	var r struct {
		CallID  string `json:"call_id"`
		IsError bool   `json:"is_error"`
	}
	if err := json.Unmarshal(m.Body, &r); err != nil {
		c.malformed.Add(1)
		return nil
	}
	c.mu.Lock()
	ch, ok := c.pending[r.CallID]
	delete(c.pending, r.CallID)
	c.mu.Unlock()
	if !ok {
		c.late.Add(1)
		return nil
	}
	ch <- replyArrival{at: now, isError: r.IsError} // buffered 1: never blocks
	return nil
}

func (c *caller) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// call makes one call and returns its latency: from just before the PUB of
// the invocation to the reply's arrival in HandleMessage. The id and body
// are made before the clock starts.
func (c *caller) call(timeout time.Duration) (time.Duration, error) {
	id := randomHex(16)
	body, err := json.Marshal(invocation{
		ID:         id,
		CallerID:   c.callerID,
		Payload:    json.RawMessage(`"Aidar"`),
		ReplyTopic: c.replyTopic,
	})
	if err != nil {
		return 0, err
	}
	ch := make(chan replyArrival, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	start := time.Now()
	if err := c.prod.Publish(c.uriTopic, body); err != nil {
		c.forget(id)
		return 0, err
	}
	select {
	case r := <-ch:
		if r.isError {
			return 0, errors.New("remote error")
		}
		c.trace.add(start.UnixNano(), r.at.UnixNano(), nowNs())
		return r.at.Sub(start), nil
	case <-timer.C:
		c.forget(id)
		return 0, errTimeout
	}
}

type batchResult struct {
	latencies []time.Duration
	errors    int
	timeouts  int
	elapsed   time.Duration
}

// runBatch makes n calls with exactly `concurrency` of them in flight
// (each worker starts its next call as soon as its last one ends) until
// all n have been started, then waits for the last ones.
func (c *caller) runBatch(n, concurrency int, timeout time.Duration) batchResult {
	if concurrency > n {
		concurrency = n
	}
	var next atomic.Int64
	var mu sync.Mutex
	var res batchResult
	res.latencies = make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/concurrency+1)
			var errs, timeouts int
			for next.Add(1) <= int64(n) {
				d, err := c.call(timeout)
				switch {
				case err == nil:
					local = append(local, d)
				case errors.Is(err, errTimeout):
					timeouts++
					errs++
				default:
					errs++
					log.Printf("call: %v", err)
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, local...)
			res.errors += errs
			res.timeouts += timeouts
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

type callResult struct {
	Role        string    `json:"role"`
	N           int       `json:"n"`
	Concurrency int       `json:"concurrency"`
	Warmup      int       `json:"warmup"`
	ElapsedS    float64   `json:"elapsed_s"`
	CallsPerS   float64   `json:"calls_per_s"`
	OK          int       `json:"ok"`
	Errors      int       `json:"errors"`
	Timeouts    int       `json:"timeouts"`
	Late        int64     `json:"late_replies"`
	P50us       float64   `json:"p50_us"`
	P90us       float64   `json:"p90_us"`
	P99us       float64   `json:"p99_us"`
	MeanUs      float64   `json:"mean_us"`
	MinUs       float64   `json:"min_us"`
	CPUs        float64   `json:"cpu_s"` // user+system CPU of this process over the measured calls
	MaxUs       float64   `json:"max_us"`
	Trace       [][]int64 `json:"trace,omitempty"`
}

// percentileUs is the nearest-rank percentile of sorted latencies, in µs.
func percentileUs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return us(sorted[i])
}

func us(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)*10) / 10
}

func runCall(args []string) error {
	var c common
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	c.register(fs)
	uriTopic := fs.String("uri-topic", "", "topic the responder (serve) listens on")
	n := fs.Int("n", 2000, "measured calls")
	warmup := fs.Int("warmup", 200, "calls made first and not measured (at the same concurrency)")
	concurrency := fs.Int("concurrency", 1, "calls kept in flight (1 = sequential)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-call timeout")
	maxInFlight := fs.Int("max-in-flight", 200, "reply consumer MaxInFlight (RDY)")
	handlers := fs.Int("reply-handlers", 4, "concurrent reply handler goroutines")
	trace := fs.Bool("trace", false, "print per-call timestamps of the measured calls (for bench/hops.py)")
	fs.Parse(args)
	if *uriTopic == "" {
		return errors.New("-uri-topic is required")
	}
	if *n < 1 || *concurrency < 1 {
		return errors.New("-n and -concurrency must be at least 1")
	}

	prod, err := newProducer(&c)
	if err != nil {
		return err
	}
	defer prod.Stop()

	// 14 + 32 + 10 = 56 characters, inside nsqd's 64 for a topic name.
	cl := &caller{
		prod:       prod,
		uriTopic:   *uriTopic,
		replyTopic: "_rpc_._reply_." + randomHex(16) + "#ephemeral",
		callerID:   randomHex(16),
		pending:    make(map[string]chan replyArrival),
	}
	cons, err := newConsumer(&c, cl.replyTopic, "c#ephemeral", unbufferedConfig(*maxInFlight))
	if err != nil {
		return err
	}
	cons.AddConcurrentHandlers(cl, *handlers)
	if err := cons.ConnectToNSQD(c.nsqd); err != nil {
		return fmt.Errorf("subscribe %s: %w", cl.replyTopic, err)
	}
	defer func() {
		cons.Stop()
		select {
		case <-cons.StopChan:
		case <-time.After(5 * time.Second):
		}
	}()
	log.Printf("call: replies on %s; %d warm-up + %d calls, %d in flight", cl.replyTopic, *warmup, *n, *concurrency)

	if *warmup > 0 {
		w := cl.runBatch(*warmup, *concurrency, *timeout)
		log.Printf("call: warm-up done in %v (%d errors)", w.elapsed, w.errors)
	}
	cl.trace.on = *trace
	cpu0 := cpuSeconds()
	res := cl.runBatch(*n, *concurrency, *timeout)
	cpu := cpuSeconds() - cpu0

	lat := res.latencies
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	out := callResult{
		Role:        "call",
		N:           *n,
		Concurrency: *concurrency,
		Warmup:      *warmup,
		ElapsedS:    res.elapsed.Seconds(),
		CallsPerS:   float64(len(lat)) / res.elapsed.Seconds(),
		OK:          len(lat),
		Errors:      res.errors,
		Timeouts:    res.timeouts,
		Late:        cl.late.Load(),
		P50us:       percentileUs(lat, 0.50),
		P90us:       percentileUs(lat, 0.90),
		P99us:       percentileUs(lat, 0.99),
		CPUs:        cpu,
		Trace:       cl.trace.rows,
	}
	if len(lat) > 0 {
		out.MeanUs = us(sum / time.Duration(len(lat)))
		out.MinUs = us(lat[0])
		out.MaxUs = us(lat[len(lat)-1])
	}
	printResult(out)
	return nil
}

// cpuSeconds is this process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
