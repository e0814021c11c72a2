//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// command is a binary the test builds: its name and where it is built from.
type command struct {
	name   string // binary name
	module string // module directory, relative to the repository root
	pkg    string // package path, relative to module (./cmd/...) or an import path
}

// commands are the binaries of a microservices deployment, greenticctl, and
// nats-server from its Go module (a tool of the tests module, so its version
// is the one the services are tested against).
var commands = []command{
	{"ingress-webhook", "services/ingress-webhook", "./cmd/ingress-webhook"},
	{"flow-executor", "services/flow-executor", "./cmd/flow-executor"},
	{"timer", "services/timer", "./cmd/timer"},
	{"email-sender", "services/email-sender", "./cmd/email-sender"},
	{"sms-sender", "services/sms-sender", "./cmd/sms-sender"},
	{"admin-api", "services/admin-api", "./cmd/admin-api"},
	{"greenticctl", "services/admin-api", "./cmd/greenticctl"},
	{"nats-server", "tests", "github.com/nats-io/nats-server/v2"},
}

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "flow-executor", "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

// buildCommands builds every command into a temporary directory and
// returns it. Each module is built from its own directory, so this works
// with the workspace and with GOWORK=off alike. The binaries get the race
// detector when this test has it: their reports fail the test (see
// cluster.checkRaces), and the packages are the ones `go test -race` of
// the other modules already compiled.
func buildCommands(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	byModule := map[string][]string{}
	var modules []string
	for _, c := range commands {
		if byModule[c.module] == nil {
			modules = append(modules, c.module)
		}
		byModule[c.module] = append(byModule[c.module], c.pkg)
	}
	// One go command at a time: on a cold cache, parallel builds would
	// compile the packages they share twice.
	for _, m := range modules {
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, byModule[m]...)
		cmd := exec.Command("go", args...)
		cmd.Dir = filepath.Join(root, m)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), m, err, out)
		}
	}
	for _, c := range commands {
		if _, err := os.Stat(filepath.Join(dir, c.name)); err != nil {
			t.Fatalf("built %s: %v", c.name, err)
		}
	}
	return dir
}

// cluster owns the processes of one test: it starts them in their own
// process groups, kills every group at cleanup (also when the test fails or
// panics; a process whose test binary dies is killed by the kernel, see
// sysProcAttr), and writes the end of each process's output into the test
// log when the test failed.
type cluster struct {
	t      *testing.T
	bin    string
	logDir string

	mu    sync.Mutex
	procs []*process
	runs  map[string]int // starts per name, for log file names
}

func newCluster(t *testing.T, bin string) *cluster {
	c := &cluster{t: t, bin: bin, logDir: t.TempDir(), runs: map[string]int{}}
	// Registered before any process is started, so it runs after every
	// process has been killed (cleanups run last in, first out).
	t.Cleanup(c.report)
	return c
}

// process is one started OS process.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been waited for
	err  error         // the exit error, once done is closed
}

// start runs binary with args and exactly env (nothing is inherited from
// the test's environment, as in a container), its output going to a log
// file. t is the test or subtest starting it; the process lives until it
// is killed or the whole test ends.
func (c *cluster) start(t *testing.T, name, binary string, env map[string]string, args ...string) *process {
	t.Helper()
	c.mu.Lock()
	c.runs[name]++
	logPath := filepath.Join(c.logDir, fmt.Sprintf("%s.%d.log", name, c.runs[name]))
	c.mu.Unlock()
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(c.bin, binary), args...)
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	c.t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL to the process's group and waits until the process has
// exited. Killing a process that has already exited does nothing.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	// The group is the process's own pid (Setpgid); ESRCH once it is gone.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// exited reports whether the process has exited, with its error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// waitReady waits until GET url answers 200. If the process exits first
// or is not ready in time, it fails the test with the process's output and
// returns false; it may be called from any goroutine (the caller stops the
// test).
func (c *cluster) waitReady(p *process, url string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := p.exited(); done {
			c.t.Errorf("%s exited before it was ready (%v):\n%s", p.name, err, tail(p.log, 60))
			return false
		}
		code, body := get(url)
		if code == http.StatusOK {
			return true
		}
		if time.Now().After(deadline) {
			c.t.Errorf("%s not ready within %s (%s: %d %s):\n%s", p.name, timeout, url, code, body, tail(p.log, 60))
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get is the status and body of GET url (0 and the error when it fails).
func get(url string) (int, string) {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// splitAddr splits a host:port address.
func splitAddr(t *testing.T, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// report writes the end of every process's output into the test log when
// the test failed, and fails it when a race-enabled binary reported a race.
func (c *cluster) report() {
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		p.kill() // already done by its own cleanup; this keeps report safe on its own
		if b, err := os.ReadFile(p.log); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			c.t.Errorf("%s reported a data race:\n%s", p.name, raceReport(b))
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, p := range procs {
		_, err := p.exited()
		c.t.Logf("--- output of %s (%s, %v), last lines:\n%s", p.name, filepath.Base(p.log), err, tail(p.log, 150))
	}
}

// raceReport is the first race report of a process's output.
func raceReport(b []byte) string {
	i := bytes.Index(b, []byte("WARNING: DATA RACE"))
	end := bytes.Index(b[i:], []byte("=================="))
	if end < 0 {
		end = min(len(b)-i, 8000)
	}
	return string(b[i : i+end])
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// envList turns env into the KEY=value list of exec.Cmd.Env, sorted.
func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run runs a short command (greenticctl) to completion with a deadline.
func run(ctx context.Context, env map[string]string, binary string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = envList(env)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", filepath.Base(binary), strings.Join(args, " "), err)
	}
	return string(out), nil
}
