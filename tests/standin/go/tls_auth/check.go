// mongo-standin with TLS (a CA file) and SCRAM users through the Go driver (Debian's
// golang-mongodb-mongo-driver-dev): each mechanism forced, the mechanism negotiated, and a
// wrong password failing with the driver's own error (a server error with code 18).
// Run: GO111MODULE=off GOPATH=/usr/share/gocode STANDIN_EXE=... BENCH_DATA_DIR=...
// MAKE_TEST_CERTS=... go run check.go
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

const password = "Go-Pa55w0rd"

var standinCmd *exec.Cmd // stopped on failure too: it must not outlive the check

func check(ok bool, format string, args ...interface{}) {
	if !ok {
		fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
		if standinCmd != nil && standinCmd.Process != nil {
			standinCmd.Process.Kill()
		}
		os.Exit(1)
	}
}

func must(err error, what string) {
	check(err == nil, "%s: %v", what, err)
}

func main() {
	certs, err := os.MkdirTemp("", "standin-tls-go-")
	must(err, "temp dir")
	defer os.RemoveAll(certs)
	gen := exec.Command(os.Getenv("MAKE_TEST_CERTS"), certs)
	gen.Stderr = os.Stderr
	must(gen.Run(), "make-test-certs.sh")

	cmd := exec.Command(os.Getenv("STANDIN_EXE"), "--port", "0",
		"--seed", "articles.articles="+os.Getenv("BENCH_DATA_DIR")+"/small_doc.json",
		"--tls-cert", certs+"/server.pem", "--tls-key", certs+"/server.key",
		"--user", "alice:"+password)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(err, "stdout pipe")
	must(cmd.Start(), "start mongo-standin")
	standinCmd = cmd
	line, err := bufio.NewReader(out).ReadString('\n')
	must(err, "read port")
	port, err := strconv.Atoi(strings.TrimSpace(line))
	must(err, "parse port")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uri := func(pass, mech string) string {
		u := fmt.Sprintf("mongodb://alice:%s@127.0.0.1:%d/?tls=true&authSource=admin"+
			"&tlsCAFile=%s/ca.pem&serverSelectionTimeoutMS=3000", pass, port, certs)
		if mech != "" {
			u += "&authMechanism=" + mech
		}
		return u
	}
	want, _ := primitive.ObjectIDFromHex("537416b501d53a77bb94135c")
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", ""} {
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri(password, mech)))
		must(err, "connect "+mech)
		var doc bson.M
		must(client.Database("articles").Collection("articles").FindOne(ctx, bson.M{}).Decode(&doc),
			"FindOne with "+mech)
		check(doc["_id"] == want, "%s: got %v", mech, doc["_id"])
		must(client.Disconnect(ctx), "disconnect")
		fmt.Printf("ok: TLS + %q\n", mech)
	}
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1"} {
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri("wrong", mech)))
		must(err, "connect "+mech)
		err = client.Database("articles").Collection("articles").FindOne(ctx, bson.M{}).Err()
		// Driver 1.8 wraps it in a ConnectionError: "auth error: ... (AuthenticationFailed)".
		var ce mongo.CommandError
		isCode18 := errors.As(err, &ce) && ce.Code == 18
		check(err != nil && (isCode18 || (strings.Contains(err.Error(), "auth error") &&
			strings.Contains(err.Error(), "(AuthenticationFailed) Authentication failed."))),
			"%s with a wrong password: want the driver's auth error, got %v", mech, err)
		must(client.Disconnect(ctx), "disconnect")
		fmt.Printf("ok: %s wrong password: %v\n", mech, err)
	}
	must(cmd.Process.Signal(syscall.SIGTERM), "SIGTERM")
	standinCmd = nil
	must(cmd.Wait(), "mongo-standin exit status")
}
