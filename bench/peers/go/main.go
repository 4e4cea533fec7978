// Go peer: net/http + the official Go driver (Debian's golang-mongodb-mongo-driver-dev),
// GET /mongo = FindOne({}) on articles.articles, written as relaxed extended JSON.
// Usage: peer-go -port N ; env MONGODB_URI, PEER_POOL_SIZE.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	port := flag.Int("port", 5000, "listen port (0 = ephemeral, printed on stdout)")
	flag.Parse()
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		uri = "mongodb://127.0.0.1:27017"
	}
	pool, err := strconv.ParseUint(os.Getenv("PEER_POOL_SIZE"), 10, 64)
	if err != nil {
		pool = 6000
	}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(uri).SetMaxPoolSize(pool))
	if err != nil {
		log.Fatal(err)
	}
	articles := client.Database("articles").Collection("articles")

	http.HandleFunc("/mongo", func(w http.ResponseWriter, r *http.Request) {
		var doc bson.Raw
		if err := articles.FindOne(r.Context(), bson.D{}).Decode(&doc); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		body, err := bson.MarshalExtJSON(doc, false, false)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	// Constant JSON, no database: the framework's own cost (bench/run decompose).
	http.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"Hello, World!"}`))
	})
	// Go's listener takes its backlog from net.core.somaxconn.
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		log.Fatal(err)
	}
	log.SetOutput(os.Stderr)
	os.Stdout.WriteString(strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "\n")
	log.Fatal(http.Serve(ln, nil))
}
