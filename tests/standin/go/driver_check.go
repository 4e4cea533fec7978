// mongo-standin through the Go driver (Debian's golang-mongodb-mongo-driver-dev, built
// offline): FindOne, insert, a cursor served by getMore, killCursors, CommandNotFound,
// malformed messages; with the argument "replset", replset.go's check. Run:
// GO111MODULE=off GOPATH=/usr/share/gocode go run driver_check.go replset.go [replset]
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func check(ok bool, format string, args ...interface{}) {
	if !ok {
		fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
		os.Exit(1)
	}
}

func must(err error, what string) {
	check(err == nil, "%s: %v", what, err)
}

// A stand-in on an ephemeral port, driven through --control-stdin.
type standin struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	port int
}

func startStandin(extra ...string) *standin {
	args := append([]string{"--port", "0", "--control-stdin"}, extra...)
	cmd := exec.Command(os.Getenv("STANDIN_EXE"), args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	must(err, "stdin pipe")
	out, err := cmd.StdoutPipe()
	must(err, "stdout pipe")
	must(cmd.Start(), "start mongo-standin")
	s := &standin{cmd: cmd, in: in, out: bufio.NewReader(out)}
	port, err := strconv.Atoi(s.line())
	must(err, "parse port")
	s.port = port
	return s
}

func (s *standin) line() string {
	line, err := s.out.ReadString('\n')
	must(err, "read from mongo-standin")
	return strings.TrimSpace(line)
}

// control sends one control line and returns its "ok ..." answer (anything else fails).
func (s *standin) control(command string) string {
	_, err := io.WriteString(s.in, command+"\n")
	must(err, "write control")
	answer := s.line()
	check(strings.HasPrefix(answer, "ok"), "%s: %s", command, answer)
	return answer
}

func (s *standin) stop() {
	must(s.cmd.Process.Signal(syscall.SIGTERM), "SIGTERM")
	must(s.cmd.Wait(), "mongo-standin exit status")
}

// closedByServer sends bytes on a new connection and reports whether the server closes it.
func closedByServer(port int, data []byte) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	must(err, "dial")
	defer conn.Close()
	_, err = conn.Write(data)
	must(err, "write")
	must(conn.SetReadDeadline(time.Now().Add(5*time.Second)), "deadline")
	buf := make([]byte, 1)
	_, err = conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func message(length int32, opCode int32, payload []byte) []byte {
	b := make([]byte, 16, 16+len(payload))
	binary.LittleEndian.PutUint32(b[0:], uint32(length))
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint32(b[12:], uint32(opCode))
	return append(b, payload...)
}

type commandNames struct {
	mu    sync.Mutex
	names []string
}

func (c *commandNames) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.names {
		if x == name {
			n++
		}
	}
	return n
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "replset" {
		replsetCheck() // replset.go
		return
	}
	s := startStandin("--seed", "articles.articles="+os.Getenv("BENCH_DATA_DIR")+"/small_doc.json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	names := &commandNames{}
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		names.mu.Lock()
		names.names = append(names.names, e.CommandName)
		names.mu.Unlock()
	}}
	uri := fmt.Sprintf("mongodb://127.0.0.1:%d", s.port)
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(3*time.Second).SetMonitor(monitor))
	must(err, "connect")

	// FindOne on the seeded document.
	var seeded bson.M
	must(client.Database("articles").Collection("articles").FindOne(ctx, bson.D{}).Decode(&seeded), "FindOne")
	oid, _ := primitive.ObjectIDFromHex("537416b501d53a77bb94135c")
	check(seeded["_id"] == oid && seeded["canonicalUrl"] == "http://foo.com", "seeded doc %v", seeded)

	// Insert, then find by _id.
	coll := client.Database("t").Collection("many")
	res, err := coll.InsertOne(ctx, bson.M{"name": "go"})
	must(err, "InsertOne")
	var back bson.M
	must(coll.FindOne(ctx, bson.M{"_id": res.InsertedID}).Decode(&back), "FindOne by _id")
	check(back["name"] == "go", "inserted doc %v", back)

	// 250 documents read with batchSize 100: two getMores.
	docs := make([]interface{}, 250)
	for i := range docs {
		docs[i] = bson.M{"i": int32(i)}
	}
	many, err := coll.InsertMany(ctx, docs)
	must(err, "InsertMany")
	check(len(many.InsertedIDs) == 250, "InsertMany ids %d", len(many.InsertedIDs))
	before := names.count("getMore")
	cur, err := coll.Find(ctx, bson.M{"name": nil}, options.Find().SetBatchSize(100))
	must(err, "Find")
	n := 0
	for cur.Next(ctx) {
		var d struct{ I int32 }
		must(cur.Decode(&d), "Decode")
		check(d.I == int32(n), "document %d out of order: %d", n, d.I)
		n++
	}
	must(cur.Err(), "cursor")
	check(n == 250, "cursor returned %d documents", n)
	check(names.count("getMore")-before == 2, "getMore count %d", names.count("getMore")-before)

	// Closing an open cursor sends killCursors; the cursor is then gone.
	cur, err = coll.Find(ctx, bson.M{}, options.Find().SetBatchSize(10))
	must(err, "Find")
	check(cur.Next(ctx), "first document")
	id := cur.ID()
	check(id != 0, "cursor id")
	must(cur.Close(ctx), "Close")
	check(names.count("killCursors") == 1, "killCursors count %d", names.count("killCursors"))
	err = client.Database("t").RunCommand(ctx, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "many"}}).Err()
	var ce mongo.CommandError
	check(errors.As(err, &ce) && ce.Code == 43, "getMore on killed cursor: %v", err)

	// Unknown command.
	err = client.Database("admin").RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err()
	check(errors.As(err, &ce) && ce.Code == 59 && ce.Name == "CommandNotFound", "unknown command: %v", err)

	// Malformed messages close their connection; the driver keeps working.
	body := []byte{0, 0, 0, 0, 0, 10, 0, 0, 0, 16, 'a', 0, 1, 0, 0}
	cases := map[string][]byte{
		"length below the header": message(8, 2013, nil),
		"oversized":               message(50_000_000, 2013, body),
		"unknown opcode":          message(int32(16+len(body)), 4242, body),
		"truncated BSON":          message(int32(16+len(body)), 2013, body),
	}
	for name, data := range cases {
		check(closedByServer(s.port, data), "%s: connection not closed", name)
	}
	must(client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(), "ping after malformed")

	must(client.Disconnect(ctx), "Disconnect")
	s.stop()
	fmt.Println("go driver: all checks passed")
}
