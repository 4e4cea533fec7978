// Driver-only load for bench/run decompose: N goroutines doing FindOne({}) on
// articles.articles through one client (the Go peer's driver and pool settings), no HTTP.
// Usage: findloop -uri URI -concurrency N -seconds S -pool P [-warmup W]
// Prints one JSON line: finds, errors, seconds, cpu_s (this process, measured window only).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	uri := flag.String("uri", "mongodb://127.0.0.1:27017", "MongoDB URI")
	concurrency := flag.Int("concurrency", 200, "goroutines doing FindOne")
	seconds := flag.Float64("seconds", 5, "measured seconds")
	warmup := flag.Float64("warmup", 1, "seconds before measuring")
	pool := flag.Uint64("pool", 100, "maxPoolSize")
	flag.Parse()
	if *concurrency < 1 || *seconds <= 0 || *pool < 1 {
		log.Fatal("findloop: -concurrency and -pool must be >= 1, -seconds > 0")
	}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(*uri).SetMaxPoolSize(*pool))
	if err != nil {
		log.Fatal(err)
	}
	articles := client.Database("articles").Collection("articles")
	var counting, stop atomic.Bool
	var finds, errors atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < *concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var doc bson.Raw
				err := articles.FindOne(context.Background(), bson.D{}).Decode(&doc)
				if counting.Load() {
					if err != nil {
						errors.Add(1)
					} else {
						finds.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	counting.Store(true)
	c0, t0 := cpuSeconds(), time.Now()
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	counting.Store(false)
	elapsed, cpu := time.Since(t0).Seconds(), cpuSeconds()-c0
	stop.Store(true)
	wg.Wait()
	out, _ := json.Marshal(map[string]any{"finds": finds.Load(), "errors": errors.Load(), "seconds": elapsed,
		"cpu_s": cpu, "finds_per_sec": float64(finds.Load()) / elapsed})
	os.Stdout.Write(append(out, '\n'))
	if errors.Load() > 0 {
		os.Exit(1)
	}
}
