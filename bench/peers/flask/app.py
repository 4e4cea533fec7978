# Flask peer: the seed's Flask app (GET /mongo = find_one({}) on articles.articles as JSON),
# served by uwsgi (threaded or gevent) or gunicorn + gevent; bench/run picks the server.
# PEER_GEVENT=1 monkey-patches first, as the seed's app.py did for its gevent variants.
import os

if os.environ.get("PEER_GEVENT") == "1":
    from gevent import monkey

    monkey.patch_all()

import time

from bson import json_util
from flask import Flask, Response
from pymongo import MongoClient

MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
# The seed gave each of its 4 processes 1500 pooled connections (6000 in all); bench/run
# passes PEER_POOL_SIZE scaled the same way to this machine.
POOL_SIZE = int(os.environ.get("PEER_POOL_SIZE", "1500"))

app = Flask(__name__)
# connect=False: the client is created in the master before uwsgi/gunicorn fork.
client = MongoClient(MONGODB_URI, maxPoolSize=POOL_SIZE, connect=False)
articles = client.articles.articles


@app.route("/mongo")
def mongo():
    return Response(json_util.dumps(articles.find_one()), mimetype="application/json")


@app.route("/json")
def json_constant():
    # Constant JSON, no database: the framework's own cost (bench/run decompose).
    return {"message": "Hello, World!"}


@app.route("/sleep")
def sleep():
    time.sleep(1)
    return "slept"
