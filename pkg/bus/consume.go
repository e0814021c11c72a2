package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Headers added to a dead letter; the original headers are kept as they were,
// except Nats-Msg-Id, which moves to HeaderDLQOriginalMsgID.
const (
	HeaderDLQReason          = "Greentic-Dlq-Reason"
	HeaderDLQStage           = "Greentic-Dlq-Stage"
	HeaderDLQPermanent       = "Greentic-Dlq-Permanent"
	HeaderDLQAttempts        = "Greentic-Dlq-Attempts"
	HeaderDLQFailedAt        = "Greentic-Dlq-Failed-At"
	HeaderDLQOriginalSubject = "Greentic-Dlq-Original-Subject"
	HeaderDLQOriginalStream  = "Greentic-Dlq-Original-Stream"
	HeaderDLQOriginalSeq     = "Greentic-Dlq-Original-Seq"
	HeaderDLQOriginalMsgID   = "Greentic-Dlq-Original-Msg-Id"
)

// DefaultBackoff is the delay before each retry of a failed message.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}

// ConsumerConfig configures a durable pull consumer and its processing loop.
type ConsumerConfig struct {
	Stream         string   // stream to consume
	Durable        string   // shared by every replica of the stage
	FilterSubjects []string // optional
	// Stage names the processing step in dead letters and metrics
	// ("flow", "email", ...).
	Stage string
	// Concurrency bounds the messages handled at once by this replica.
	Concurrency int
	// Key, when set, schedules messages fairly by the key of their subject
	// (TenantKey: by tenant): at most KeyConcurrency handlers per key run at
	// once on this replica, and a message whose key is at its cap is parked
	// (fetched, kept from redelivery, not started) while the replica goes on
	// fetching, so one key's backlog does not hold back the others' messages.
	// Parked messages start round-robin over their keys. Nil gives every
	// message the same key.
	Key func(subject string) string
	// KeyConcurrency bounds the handlers of one key running at once on this
	// replica; 0 means Concurrency.
	KeyConcurrency int
	// MaxParked bounds the messages this replica holds beyond Concurrency,
	// fetched but not started. 0 means none without a Key and
	// DefaultMaxParked with one.
	MaxParked int
	// AckWait is how long the server waits for an ack before redelivering;
	// the loop signals progress on long handlers so they are not redelivered.
	AckWait time.Duration
	// MaxAttempts is the number of deliveries after which a retryable
	// failure is dead-lettered.
	MaxAttempts int
	// Backoff is the delay before retry n (the last entry repeats).
	Backoff []time.Duration
	// DrainTimeout bounds how long in-flight handlers may finish after
	// shutdown starts; after it their context is cancelled and the messages
	// are left for redelivery.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Registerer receives the consumer metrics; nil means none.
	Registerer prometheus.Registerer
}

func (c *ConsumerConfig) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.KeyConcurrency == 0 {
		c.KeyConcurrency = c.Concurrency
	}
	if c.MaxParked == 0 && c.Key != nil {
		c.MaxParked = DefaultMaxParked
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first unusable setting by name.
func (c ConsumerConfig) Validate() error {
	switch {
	case c.Stream == "":
		return errors.New("consumer: stream is required")
	case c.Durable == "":
		return errors.New("consumer: durable name is required")
	case c.Stage == "":
		return errors.New("consumer: stage is required")
	case c.Concurrency < 1:
		return fmt.Errorf("consumer: concurrency must be at least 1, got %d", c.Concurrency)
	case c.KeyConcurrency < 0:
		return fmt.Errorf("consumer: key concurrency must not be negative, got %d", c.KeyConcurrency)
	case c.KeyConcurrency > c.Concurrency:
		return fmt.Errorf("consumer: key concurrency (%d) must not exceed concurrency (%d)", c.KeyConcurrency, c.Concurrency)
	case c.MaxParked < 0:
		return fmt.Errorf("consumer: max parked must not be negative, got %d", c.MaxParked)
	case c.AckWait < 100*time.Millisecond:
		return fmt.Errorf("consumer: ack wait must be at least 100ms, got %s", c.AckWait)
	case c.MaxAttempts < 1:
		return fmt.Errorf("consumer: max attempts must be at least 1, got %d", c.MaxAttempts)
	case c.DrainTimeout < 0:
		return fmt.Errorf("consumer: drain timeout must not be negative, got %s", c.DrainTimeout)
	}
	if err := ValidateName("stage", c.Stage); err != nil {
		return err
	}
	for _, d := range c.Backoff {
		if d < 0 {
			return fmt.Errorf("consumer: backoff entries must not be negative, got %s", d)
		}
	}
	return nil
}

// Delivery is one message handed to a Handler.
type Delivery struct {
	Subject   string
	Header    nats.Header
	Data      []byte
	MsgID     string
	Attempt   int // 1 on first delivery
	StreamSeq uint64
	Stored    time.Time
}

// Handler processes one delivery. A nil error acks the message; an error
// marked Permanent dead-letters it; any other error retries it with backoff
// until MaxAttempts, then dead-letters it.
type Handler func(ctx context.Context, d Delivery) error

// Consumer runs the processing loop of one durable consumer.
type Consumer struct {
	js      jetstream.JetStream
	pub     *Publisher
	topo    Topology
	cfg     ConsumerConfig
	metrics *consumerMetrics
}

// NewConsumer validates cfg (after defaults) and returns a consumer.
func NewConsumer(js jetstream.JetStream, topo Topology, cfg ConsumerConfig) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newConsumerMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Consumer{js: js, pub: NewPublisher(js, topo), topo: topo, cfg: cfg, metrics: m}, nil
}

// Run creates (or joins) the durable consumer and processes messages until
// ctx is cancelled, then stops fetching and lets in-flight handlers finish
// within DrainTimeout. It returns nil on a clean shutdown, and an error when
// consuming cannot go on (connection closed, durable consumer deleted).
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	// Parked messages are pending acks too: leave room for four replicas
	// holding their fill. (The server delivers nothing new to any replica
	// once MaxAckPending messages are pending.)
	maxAckPending := max(1000, 4*(c.cfg.Concurrency+c.cfg.MaxParked))
	cc := jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1, // the loop dead-letters; the server must never drop silently
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch len(c.cfg.FilterSubjects) {
	case 0:
	case 1:
		cc.FilterSubject = c.cfg.FilterSubjects[0]
	default:
		cc.FilterSubjects = c.cfg.FilterSubjects
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, cc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	// Handlers outlive ctx by up to DrainTimeout so that work in progress
	// at shutdown can finish and be acked.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	// Handlers run on Concurrency long-lived workers rather than a fresh
	// goroutine each: a fresh goroutine grows its stack again for every
	// message. The scheduler starts a message only while fewer than
	// Concurrency run, so a job never waits for a worker and the send
	// below never blocks.
	var wg sync.WaitGroup
	jobs := make(chan job, c.cfg.Concurrency)
	quitWorkers := make(chan struct{})
	defer close(quitWorkers)
	for range c.cfg.Concurrency {
		go func() {
			for {
				select {
				case j := <-jobs:
					c.handle(hctx, j.msg, h)
					j.done()
				case <-quitWorkers:
					return
				}
			}
		}()
	}
	s := newScheduler(ctx, c.cfg, c.metrics.parked.WithLabelValues(c.cfg.Stage))
	s.start = func(msg jetstream.Msg, ks *keyState) {
		wg.Add(1) // by the fetch loop, or by a handler not yet Done
		jobs <- job{msg: msg, done: func() {
			s.finished(ks)
			wg.Done()
		}}
	}
	stopKeepAlive := make(chan struct{})
	keepAliveDone := make(chan struct{})
	go func() {
		defer close(keepAliveDone)
		s.keepParkedAlive(stopKeepAlive, c.cfg.AckWait/3)
	}()
	runErr := c.fetchLoop(ctx, cons, s)

	// Hand parked messages back at once so that another replica takes them
	// now rather than after AckWait. The progress signals stop first so
	// that none follows a NAK.
	close(stopKeepAlive)
	<-keepAliveDone
	parked := s.closeAndTake()
	for _, msg := range parked {
		_ = msg.Nak()
	}
	if len(parked) > 0 {
		c.metrics.outcomes.WithLabelValues(c.cfg.Stage, "interrupted").Add(float64(len(parked)))
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.cfg.DrainTimeout):
		c.cfg.Logger.Warn("drain timeout, cancelling in-flight handlers", "durable", c.cfg.Durable)
		cancelHandlers()
		<-done
	}
	return runErr
}

// job is one message handed to a worker; done runs after its handler.
type job struct {
	msg  jetstream.Msg
	done func()
}

// fetchLoop pulls messages until ctx is cancelled. It asks for as many as
// there are idle handler slots, so that a replica does not hoard messages
// other replicas could run now. When a whole batch had to be parked (every
// message belonged to a key at its KeyConcurrency), the next batch doubles,
// up to the replica's room (Concurrency + MaxParked, less the messages
// running or parked): the loop skips quickly through one key's backlog to
// reach the other keys' messages. Every fetched message is started or
// parked at once, and a parked one is covered by progress signals
// (keepParkedAlive): a message buffered unseen would outlive AckWait and be
// redelivered, and handled twice. When no slot is idle the loop waits for a
// handler to finish. It returns an error only when consuming cannot go on
// (the connection is closed or the durable consumer is gone).
func (c *Consumer) fetchLoop(ctx context.Context, cons jetstream.Consumer, s *scheduler) error {
	burst := 0
	for {
		room, free := s.room()
		if room <= 0 || free <= 0 {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		n := min(room, max(free, min(burst, maxFetchBatch)))
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got, started := 0, 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				if s.dispatch(msg) {
					started++
				}
			}
			err = batch.Error()
		}
		cancel()
		if got > 0 && started == 0 {
			burst = max(2*n, 2*free)
		} else {
			burst = 0
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err := c.fetchFailed(ctx, cons, err); err != nil {
			return err
		}
	}
}

// fetchFailed decides whether a failed fetch ends Run. A closed connection
// or a deleted consumer does: returning nil would leave the service running
// without consuming. Anything else (a disconnect, a leader change) is
// retried after a pause so a dead connection is not spun on.
func (c *Consumer) fetchFailed(ctx context.Context, cons jetstream.Consumer, err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) || c.js.Conn().IsClosed() {
		return fmt.Errorf("consume %s: connection closed: %w", c.cfg.Durable, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, ierr := cons.Info(ictx)
	cancel()
	if errors.Is(ierr, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consume %s: the durable consumer no longer exists: %w", c.cfg.Durable, err)
	}
	c.cfg.Logger.Warn("fetch failed", "durable", c.cfg.Durable, "err", err)
	select {
	case <-ctx.Done():
	case <-time.After(fetchRetry):
	}
	return nil
}

func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, h Handler) {
	start := time.Now()
	d := Delivery{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(), Attempt: 1}
	if d.Header != nil {
		d.MsgID = d.Header.Get(HeaderMsgID)
	}
	md, err := msg.Metadata()
	if err == nil {
		d.Attempt = int(md.NumDelivered)
		d.StreamSeq = md.Sequence.Stream
		d.Stored = md.Timestamp
	}

	// Tell the server the message is still being worked on so a slow
	// handler is not redelivered to another replica. A timer, not a
	// goroutine: most handlers finish long before the first signal.
	stopProgress := progressSignals(msg, c.cfg.AckWait/3)
	herr := c.call(ctx, h, d)
	stopProgress()
	c.metrics.duration.WithLabelValues(c.cfg.Stage).Observe(time.Since(start).Seconds())

	log := c.cfg.Logger.With("stage", c.cfg.Stage, "subject", d.Subject, "msg_id", d.MsgID, "attempt", d.Attempt)
	switch {
	case herr == nil:
		// A plain ack, not a double ack waiting for the server's reply:
		// the slot frees at once. If the ack is lost, the message comes
		// back after AckWait and the handler recognises it by its message
		// id (every handler of the product is idempotent).
		if err := msg.Ack(); err != nil {
			log.Warn("ack failed", "err", err)
		}
		c.metrics.outcomes.WithLabelValues(c.cfg.Stage, "ack").Inc()
	case ctx.Err() != nil && errors.Is(herr, context.Canceled):
		// Shutdown interrupted the handler: hand the message back at once.
		_ = msg.Nak()
		c.metrics.outcomes.WithLabelValues(c.cfg.Stage, "interrupted").Inc()
	case IsPermanent(herr) || d.Attempt >= c.cfg.MaxAttempts:
		if err := c.deadLetter(ctx, msg, d, herr); err != nil {
			log.Error("dead letter failed, will retry", "err", err, "reason", herr.Error())
			_ = msg.NakWithDelay(c.backoff(d.Attempt))
			c.metrics.outcomes.WithLabelValues(c.cfg.Stage, "retry").Inc()
			return
		}
		log.Warn("message dead-lettered", "reason", herr.Error(), "permanent", IsPermanent(herr))
		_ = msg.TermWithReason("dead-lettered")
		c.metrics.outcomes.WithLabelValues(c.cfg.Stage, "dead_letter").Inc()
	default:
		delay, ok := retryDelay(herr)
		if !ok {
			delay = c.backoff(d.Attempt)
		}
		log.Info("message will be retried", "err", herr.Error(), "delay", delay.String())
		_ = msg.NakWithDelay(delay)
		c.metrics.outcomes.WithLabelValues(c.cfg.Stage, "retry").Inc()
	}
}

// call runs the handler, turning a panic into a permanent failure so one
// poisonous message cannot crash every replica in turn.
func (c *Consumer) call(ctx context.Context, h Handler, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.cfg.Logger.Error("handler panic", "stage", c.cfg.Stage, "subject", d.Subject, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = Permanent(fmt.Errorf("handler panic: %v", r))
		}
	}()
	return h(ctx, d)
}

func (c *Consumer) backoff(attempt int) time.Duration {
	i := attempt - 1
	if i < 0 {
		i = 0
	}
	if i >= len(c.cfg.Backoff) {
		i = len(c.cfg.Backoff) - 1
	}
	return c.cfg.Backoff[i]
}

// deadLetter publishes the original message with the reason to
// greentic.dlq.{env}.{tenant}.{stage}. Its message id is derived from the
// stage and the original stream sequence so a retried dead-lettering stores
// one letter, while two stages failing the same message store one each.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, d Delivery, reason error) error {
	tenant := unknownTenant
	if s, err := ParseSubject(d.Subject); err == nil {
		tenant = s.Tenant
	}
	subject, err := DLQSubject(c.topo.Env, tenant, c.cfg.Stage)
	if err != nil {
		return err
	}
	h := nats.Header{}
	for k, v := range d.Header {
		if k == HeaderMsgID {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	if d.MsgID != "" {
		h.Set(HeaderDLQOriginalMsgID, d.MsgID)
	}
	for k, v := range deadLetterHeaders(reason) {
		h.Set(k, v)
	}
	h.Set(HeaderDLQReason, reason.Error())
	h.Set(HeaderDLQStage, c.cfg.Stage)
	h.Set(HeaderDLQPermanent, strconv.FormatBool(IsPermanent(reason)))
	h.Set(HeaderDLQAttempts, strconv.Itoa(d.Attempt))
	h.Set(HeaderDLQFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(HeaderDLQOriginalSubject, d.Subject)
	h.Set(HeaderDLQOriginalStream, c.cfg.Stream)
	h.Set(HeaderDLQOriginalSeq, strconv.FormatUint(d.StreamSeq, 10))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = c.pub.Publish(pctx, subject, "dlq:"+c.cfg.Stage+":"+c.cfg.Stream+":"+strconv.FormatUint(d.StreamSeq, 10), d.Data, h)
	return err
}

// fetchRetry is the pause after a failed fetch.
const fetchRetry = 250 * time.Millisecond

// fetchWait bounds one pull request: long enough not to poll an idle stream,
// short enough that a replica stopping mid-request leaves few messages
// delivered to nobody (those come back only after AckWait).
const fetchWait = 5 * time.Second

// unknownTenant files dead letters whose subject names no tenant.
const unknownTenant = "_unknown"

type consumerMetrics struct {
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
	parked   *prometheus.GaugeVec
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	m := &consumerMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_consumer_messages_total",
			Help: "Messages handled by a consumer stage, by outcome (ack, retry, dead_letter, interrupted).",
		}, []string{"stage", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greentic_consumer_handle_seconds",
			Help:    "Time spent handling one message, by stage.",
			Buckets: prometheus.DefBuckets,
		}, []string{"stage"}),
		parked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "greentic_consumer_parked_messages",
			Help: "Messages fetched by a consumer stage and waiting for their key to drop below its concurrency.",
		}, []string{"stage"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.outcomes, err = Register(reg, m.outcomes); err != nil {
		return nil, err
	}
	if m.duration, err = Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.parked, err = Register(reg, m.parked); err != nil {
		return nil, err
	}
	return m, nil
}

// Register registers c with reg, or returns the collector already registered
// under the same description, so several components sharing one registry
// (standalone mode, tests) share their metrics.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// progressSignals sends msg.InProgress every interval until the returned
// stop is called; no signal is sent after stop returns.
func progressSignals(msg jetstream.Msg, interval time.Duration) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock() // t is set before the first signal reads it
	defer mu.Unlock()
	t = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = msg.InProgress()
		t.Reset(interval)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}
