# Tornado + Motor peer: the seed's Tornado app, one process per core (fork_processes),
# each with its own Motor client. Usage: app.py PORT [PROCESSES] ; env MONGODB_URI, PEER_POOL_SIZE,
# PEER_BACKLOG.
import os
import sys

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.process
import tornado.web
from bson import json_util
from motor.motor_tornado import MotorClient

MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
POOL_SIZE = int(os.environ.get("PEER_POOL_SIZE", "1500"))
BACKLOG = int(os.environ.get("PEER_BACKLOG", "4096"))


class MongoHandler(tornado.web.RequestHandler):
    async def get(self):
        doc = await self.settings["articles"].find_one()
        self.set_header("Content-Type", "application/json")
        self.write(json_util.dumps(doc))


class JsonHandler(tornado.web.RequestHandler):
    """Constant JSON, no database: the framework's own cost (bench/run decompose)."""

    def get(self):
        self.write({"message": "Hello, World!"})


def main():
    port = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # 0 = one per core
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1", backlog=BACKLOG)
    tornado.process.fork_processes(processes, max_restarts=0)
    articles = MotorClient(MONGODB_URI, maxPoolSize=POOL_SIZE).articles.articles
    app = tornado.web.Application([(r"/mongo", MongoHandler), (r"/json", JsonHandler)], articles=articles)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
