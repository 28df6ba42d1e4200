#!/usr/bin/env python3
"""A loopback HTTP file server for the archive benchmarks: Python's http.server (threads, directory
listings that rclone's http backend can read) sending file bodies with sendfile(2), so the source
is not the bottleneck. Serve sparse files (`truncate -s 4G f.mp4`): no disk space, no disk reads.

    python3 bench/sendfile_server.py DIR PORT
"""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile):
        outputfile.flush()
        self.connection.sendfile(source)

    def log_message(self, *args):
        pass


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    handler = functools.partial(Handler, directory=directory)
    http.server.ThreadingHTTPServer.daemon_threads = True
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
