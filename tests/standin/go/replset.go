// The Go driver against mongo-standin --replset (run by driver_check.go with the argument
// "replset"): the set discovered from one seed (a secondary), reads landing where the read
// preference says (the stand-in's per-member find counters), and a stepdown followed (a
// write and a primary read served by the new primary).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
)

// field is one "key=value" of a control answer.
func field(answer, key string) string {
	for _, word := range strings.Fields(answer) {
		if strings.HasPrefix(word, key+"=") {
			return word[len(key)+1:]
		}
	}
	check(false, "no %s in %q", key, answer)
	return ""
}

func (s *standin) finds() []int {
	var out []int
	for _, v := range strings.Split(field(s.control("rs"), "finds"), ",") {
		n, err := strconv.Atoi(v)
		must(err, "finds")
		out = append(out, n)
	}
	return out
}

func replsetCheck() {
	s := startStandin("--replset", "rs0", "--members", "3", "--election-ms", "300",
		"--seed", "articles.articles="+os.Getenv("BENCH_DATA_DIR")+"/small_doc.json")
	defer s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Member 1 (a secondary) alone in the URI: the primary and member 2 must be discovered.
	uri := fmt.Sprintf("mongodb://127.0.0.1:%d/?replicaSet=rs0&heartbeatFrequencyMS=500"+
		"&serverSelectionTimeoutMS=5000&localThresholdMS=1000", s.port+1)
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
	must(err, "connect")
	defer func() { must(client.Disconnect(context.Background()), "disconnect") }()

	articles := client.Database("articles").Collection("articles")
	reads := func(pref *readpref.ReadPref, n int) []int {
		coll, err := articles.Clone(options.Collection().SetReadPreference(pref))
		must(err, "Clone")
		before := s.finds()
		for i := 0; i < n; i++ {
			must(coll.FindOne(ctx, bson.D{}).Err(), "FindOne "+pref.Mode().String())
		}
		after := s.finds()
		for i := range after {
			after[i] -= before[i]
		}
		return after
	}

	// Discovery: the primary (member 0) serves primary reads; both secondaries are known
	// once secondary reads reach each of them.
	d := reads(readpref.Primary(), 10)
	check(d[0] == 10 && d[1] == 0 && d[2] == 0, "primary reads: %v", d)
	d = reads(readpref.PrimaryPreferred(), 10)
	check(d[0] == 10 && d[1] == 0 && d[2] == 0, "primaryPreferred reads: %v", d)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A random pick among two: 40 reads on one alone would be a 1 in 2^39 chance.
		d = reads(readpref.Secondary(), 40)
		check(d[0] == 0 && d[1]+d[2] == 40, "secondary reads: %v", d)
		if d[1] > 0 && d[2] > 0 {
			break
		}
		check(time.Now().Before(deadline), "secondary reads never reached both: %v", d)
		time.Sleep(200 * time.Millisecond)
	}
	d = reads(readpref.SecondaryPreferred(), 10)
	check(d[0] == 0 && d[1]+d[2] == 10, "secondaryPreferred reads: %v", d)
	d = reads(readpref.Nearest(), 10)
	check(d[0]+d[1]+d[2] == 10, "nearest reads: %v", d)

	// A stepdown: the write waits for the election (or is retried after NotWritablePrimary)
	// and lands on member 1, the new primary; a primary read follows it there.
	writes := client.Database("t").Collection("writes")
	_, err = writes.InsertOne(ctx, bson.D{{Key: "n", Value: 1}})
	must(err, "insert before the stepdown")
	term := field(s.control("rs"), "term")
	check(field(s.control("stepdown"), "primary") == "-1", "no election under way")
	_, err = writes.InsertOne(ctx, bson.D{{Key: "n", Value: 2}})
	must(err, "insert after the stepdown")
	answer := s.control("rs")
	check(field(answer, "primary") == "1", "new primary: %s", answer)
	check(field(answer, "term") != term, "same term after the election: %s", answer)
	var count struct{ N int }
	must(client.Database("t").RunCommand(ctx, bson.D{{Key: "count", Value: "writes"}}).
		Decode(&count), "count")
	check(count.N == 2, "count after the stepdown: %d", count.N)
	deadline = time.Now().Add(10 * time.Second)
	for {
		d = reads(readpref.Primary(), 1)
		if d[1] == 1 {
			break
		}
		check(d[0] == 1 && time.Now().Before(deadline), "primary read after the stepdown: %v", d)
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("go replset check: discovery, read preferences, stepdown: ok")
}
