// Command almanet-bench-floor is the Go "floor" of the almanet benchmark:
// the same workloads the Python harness measures for almanet, done with the
// reference go-nsq client, so that the Python figures have something to be
// compared against.
//
// Every role is a subcommand. Logs go to stderr; stdout carries at most a
// "READY" line (roles that subscribe) and exactly one final line of JSON.
//
//	almanet-bench-floor serve   -nsqd ADDR -topic T -channel C
//	almanet-bench-floor call    -nsqd ADDR -uri-topic T -n 2000 -warmup 200 -concurrency 1
//	almanet-bench-floor consume -nsqd ADDR -topic T -channel C -n 100000
//	almanet-bench-floor produce -nsqd ADDR -topic T -n 100000 -batch 0
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	nsq "github.com/nsqio/go-nsq"
)

const usage = `usage: almanet-bench-floor ROLE [flags]

roles:
  serve    RPC responder: answer invocations on -topic/-channel
  call     RPC requester: time calls to -uri-topic
  consume  count {"seq": i, "text": "hello"} messages on -topic/-channel
  produce  publish n {"seq": i, "text": "hello"} messages to -topic

run "almanet-bench-floor ROLE -h" for the flags of a role.
`

// stdout is written only through these two helpers, so that the harness
// sees nothing but "READY" and the final JSON line there.
func printReady() {
	fmt.Fprintln(os.Stdout, "READY")
	os.Stdout.Sync()
}

func printResult(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatalf("encode result: %v", err)
	}
	os.Stdout.Write(append(b, '\n'))
	os.Stdout.Sync()
}

// common holds the flags every role shares.
type common struct {
	nsqd    string
	verbose bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.nsqd, "nsqd", "127.0.0.1:4150", "nsqd TCP address host:port")
	fs.BoolVar(&c.verbose, "v", false, "log go-nsq at INFO level (default: warnings only)")
}

func (c *common) logLevel() nsq.LogLevel {
	if c.verbose {
		return nsq.LogLevelInfo
	}
	return nsq.LogLevelWarning
}

// unbufferedConfig returns a consumer config asking nsqd not to buffer
// what it writes to this connection: output_buffer_size -1 (nsqd then uses
// a 1-byte writer and no flush timeout) and output_buffer_timeout -1.
func unbufferedConfig(maxInFlight int) *nsq.Config {
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = maxInFlight
	cfg.OutputBufferSize = -1
	cfg.OutputBufferTimeout = -1
	return cfg
}

// newProducer makes a producer with go-nsq's default config and connects
// it at once (Ping), so that connection set-up is not part of any timing.
func newProducer(c *common) (*nsq.Producer, error) {
	p, err := nsq.NewProducer(c.nsqd, nsq.NewConfig())
	if err != nil {
		return nil, err
	}
	p.SetLogger(log.New(os.Stderr, "", log.LstdFlags), c.logLevel())
	if err := p.Ping(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("connect producer to %s: %w", c.nsqd, err)
	}
	return p, nil
}

func newConsumer(c *common, topic, channel string, cfg *nsq.Config) (*nsq.Consumer, error) {
	cons, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		return nil, err
	}
	cons.SetLogger(log.New(os.Stderr, "", log.LstdFlags), c.logLevel())
	return cons, nil
}

// randomHex returns 2*n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		log.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// stopSignals delivers SIGINT and SIGTERM.
func stopSignals() chan os.Signal {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	return ch
}

func main() {
	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	role, args := os.Args[1], os.Args[2:]
	var err error
	switch role {
	case "serve":
		err = runServe(args)
	case "call":
		err = runCall(args)
	case "consume":
		err = runConsume(args)
	case "produce":
		err = runProduce(args)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown role %q\n\n%s", role, usage)
		os.Exit(2)
	}
	if err != nil {
		log.Printf("%s: %v", role, err)
		os.Exit(1)
	}
}
