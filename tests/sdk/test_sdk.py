#!/usr/bin/env python3
"""The platform's official Python SDK as a real client of `vidkeep simulate`.

Drives the simulator with zai-sdk 0.2.3 (pinned in .ci/run) exactly as the SDK's documentation
and examples call it (README "Video Generation"; examples/video_models_examples.py and
examples/video_generator.py in the SDK's repository): text, image by URL and by data URI,
start-end frames, cogvideox-3 with quality/fps/with_audio, retrieve_videos_result polled to
SUCCESS and the video downloaded and checked to be an MP4; a client that signs its key as a
JWT (disable_token_cache=False); a wrong key (the SDK raises APIAuthenticationError); a model
over its concurrency limit, 1302 (the SDK raises APIReachLimitError after its own retries).

Every request the SDK sends is recorded by the simulator's request log and compared with the
fixtures in tests/sdk/fixtures/: the body byte for byte, and the headers that matter. With
--record the fixtures are written instead (after an SDK upgrade, say).

Usage: test_sdk.py --vidkeep PATH/TO/vidkeep [--record]
Prints one line per test and ends with "N passed, N failed"; exits 1 if any failed.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import warnings
from pathlib import Path

import zai
from zai import ZhipuAiClient
from zai.core import APIAuthenticationError, APIReachLimitError

# The simulator's test key is short; PyJWT warns about it on every token.
warnings.filterwarnings("ignore", message="The HMAC key is")

SDK = "zai-sdk 0.2.3"
KEY = "sim-key.sim-secret"
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
# The request headers a fixture keeps: the ones that say how the SDK talks, not transport noise
# (Host, Content-Length, Accept-Encoding, User-Agent vary or are httpx's).
KEPT_HEADERS = ["authorization", "content-type", "accept", "zai-sdk-ver", "x-source-channel", "source_type", "x-request-sdk"]
# The model the simulator holds at zero tasks in flight, so every submit of it gets 1302.
OVER_LIMIT_MODEL = "cogvideox-2"


class Simulator:
    """`vidkeep simulate` on a free loopback port, with a request log."""

    def __init__(self, vidkeep, folder):
        self.log = folder / "requests.jsonl"
        config = folder / "sim.toml"
        config.write_text(
            f'api_key = "{KEY}"\nlatency_min = "200ms"\nlatency_max = "600ms"\n'
            f'request_log = "{self.log}"\n[model_limits]\n"{OVER_LIMIT_MODEL}" = 0\n'
        )
        self.process = subprocess.Popen(
            [vidkeep, "simulate", "--listen", "127.0.0.1:0", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline()
        # "simulator listening: base_url = "http://127.0.0.1:PORT/api/paas/v4""
        if "base_url" not in line:
            self.stop()
            raise RuntimeError(f"vidkeep simulate did not start: {line!r}")
        self.base_url = line.split('"')[1] + "/"
        self.origin = self.base_url.split("/api/")[0]

    def requests(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]

    def stats(self):
        with urllib.request.urlopen(f"{self.origin}/_sim/stats") as r:
            return json.load(r)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_for_success(client, task_id, max_wait_time=30):
    """The SDK examples' `_wait_for_completion`, with a shorter wait (the simulator is fast)."""
    start = time.time()
    while True:
        assert time.time() - start < max_wait_time, f"task {task_id} not done after {max_wait_time} s"
        result = client.videos.retrieve_videos_result(id=task_id)
        if result.task_status == "SUCCESS":
            return result
        assert result.task_status in ("PROCESSING", "SUBMITTED"), f"task {task_id}: {result}"
        time.sleep(0.2)


def check_mp4(url):
    with urllib.request.urlopen(url) as r:
        data = r.read()
        content_type = r.headers.get("content-type")
    assert data[4:8] == b"ftyp", f"{url} is not an MP4 (starts {data[:12]!r})"
    assert content_type == "video/mp4", content_type
    return len(data)


def data_uri(path):
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


class Suite:
    def __init__(self, sim, record):
        self.sim, self.record = sim, record
        self.passed, self.failed = 0, 0
        self.client = ZhipuAiClient(api_key=KEY, base_url=sim.base_url)

    def run(self, name, test):
        try:
            test()
            self.passed += 1
            print(f"ok     {name}", flush=True)
        except Exception:
            self.failed += 1
            print(f"FAILED {name}\n{traceback.format_exc()}", flush=True)

    def recorded(self, kind, call, do):
        """Runs `do`, then keeps or checks the requests it made as fixture `kind`."""
        before = len(self.sim.requests())
        value = do()
        made = self.sim.requests()[before:]
        assert made, f"{kind}: the simulator logged no request"
        self.fixture(kind, call, made[0])
        return value

    def fixture(self, kind, call, request):
        kept = {h: request["headers"][h] for h in KEPT_HEADERS if h in request["headers"]}
        auth = kept.get("authorization", {})
        if auth.get("form") == "token":
            # The token's times change with every run; its shape does not.
            auth["jwt_payload"] = sorted(auth["jwt_payload"].keys())
        got = {"sdk": SDK, "call": call, "method": request["method"], "path": request["path"],
               "headers": kept, "body": request["body"]}
        if request["method"] == "GET":
            # The task id in the path is minted by the simulator, different each run.
            prefix, _, task_id = request["path"].rpartition("/")
            assert task_id, request["path"]
            got["path"] = f"{prefix}/{{id}}"
        path = FIXTURES / f"{kind}.json"
        if self.record:
            path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
            return
        want = json.loads(path.read_text())
        for field in ["method", "path", "headers", "body"]:
            assert got[field] == want[field], f"{kind}: the SDK's {field} differs from {path.name}:\n{got[field]!r}\n!=\n{want[field]!r}"

    def submit_and_archive(self, kind, call, **kwargs):
        response = self.recorded(kind, call, lambda: self.client.videos.generations(**kwargs))
        assert response.task_status == "PROCESSING" and response.id, response
        result = wait_for_success(self.client, response.id)
        assert result.model.lower() == kwargs["model"], result
        check_mp4(result.video_result[0].url)
        return response.id


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vidkeep", required=True)
    parser.add_argument("--record", action="store_true", help="write the fixtures instead of checking them")
    args = parser.parse_args()
    print(f"{SDK} (installed: zai {zai.__version__}) against {args.vidkeep} simulate", flush=True)
    assert zai.__version__ == "0.2.3", f"the fixtures are of zai-sdk 0.2.3, this is {zai.__version__}"
    with tempfile.TemporaryDirectory() as folder:
        sim = Simulator(args.vidkeep, Path(folder))
        try:
            suite = Suite(sim, args.record)
            tests(suite)
        finally:
            sim.stop()
    print(f"{suite.passed} passed, {suite.failed} failed", flush=True)
    return 1 if suite.failed or not suite.passed else 0


def tests(s):
    frame = FIXTURES / "frame.png"
    first, last = "https://example.com/first.png", "https://example.com/last.png"

    # The SDK's examples: viduq1_text_to_video (quality and with_audio left None).
    s.run("text to video (viduq1-text)", lambda: s.submit_and_archive(
        "text", 'videos.generations(model="viduq1-text", prompt="a red fox runs through snow", style="general", '
        'duration=5, aspect_ratio="16:9", size="1920x1080", movement_amplitude="auto", quality=None, with_audio=None)',
        model="viduq1-text", prompt="a red fox runs through snow", style="general", duration=5,
        aspect_ratio="16:9", size="1920x1080", movement_amplitude="auto", quality=None, with_audio=None))
    # viduq1_image_to_video, image by URL.
    s.run("image URL to video (viduq1-image)", lambda: s.submit_and_archive(
        "image-url", f'videos.generations(model="viduq1-image", image_url="{first}", prompt="the lantern drifts", '
        'duration=5, size="1920x1080", movement_amplitude="auto", quality=None, with_audio=None)',
        model="viduq1-image", image_url=first, prompt="the lantern drifts", duration=5, size="1920x1080",
        movement_amplitude="auto", quality=None, with_audio=None))
    # The same by Base64, which the platform takes as a data URI.
    s.run("image data URI to video (viduq1-image)", lambda: s.submit_and_archive(
        "image-data-uri", 'videos.generations(model="viduq1-image", image_url="data:image/png;base64,<frame.png>", '
        'prompt="the lantern drifts", duration=5, size="1920x1080", movement_amplitude="auto")',
        model="viduq1-image", image_url=data_uri(frame), prompt="the lantern drifts", duration=5,
        size="1920x1080", movement_amplitude="auto"))
    # viduq1_start_end_video.
    s.run("start and end frames (viduq1-start-end)", lambda: s.submit_and_archive(
        "start-end", f'videos.generations(model="viduq1-start-end", image_url=["{first}", "{last}"], '
        'prompt="smooth transition", duration=5, size="1920x1080", movement_amplitude="small", quality=None, with_audio=None)',
        model="viduq1-start-end", image_url=[first, last], prompt="smooth transition", duration=5,
        size="1920x1080", movement_amplitude="small", quality=None, with_audio=None))
    # The README's example and cogvideox3_text_to_video: quality, with_audio, size, fps.
    s.run("cogvideox-3 with quality, fps and with_audio", lambda: s.submit_and_archive(
        "cogvideox-3", 'videos.generations(model="cogvideox-3", prompt="A cat is playing with a ball.", '
        'quality="quality", with_audio=True, size="1920x1080", fps=30)',
        model="cogvideox-3", prompt="A cat is playing with a ball.", quality="quality", with_audio=True,
        size="1920x1080", fps=30))

    def retrieve():
        task = s.client.videos.generations(model="viduq1-text", prompt="a harbour at dawn")
        s.recorded("retrieve", "videos.retrieve_videos_result(id=<task id>)",
                   lambda: s.client.videos.retrieve_videos_result(id=task.id))
    s.run("retrieve_videos_result request", retrieve)

    def jwt_client():
        client = ZhipuAiClient(api_key=KEY, base_url=s.sim.base_url, disable_token_cache=False)
        task = s.recorded("jwt", 'ZhipuAiClient(api_key=..., disable_token_cache=False).videos.generations('
                          'model="viduq1-text", prompt="a harbour at dawn")',
                          lambda: client.videos.generations(model="viduq1-text", prompt="a harbour at dawn"))
        result = wait_for_success(client, task.id)
        check_mp4(result.video_result[0].url)
        auth = s.sim.requests()[-1]["headers"]["authorization"]
        assert auth["form"] == "token" and auth["jwt_header"]["sign_type"] == "SIGN", auth
    s.run("a JWT-signed client", jwt_client)

    def wrong_key():
        client = ZhipuAiClient(api_key="sim-key.wrong-secret", base_url=s.sim.base_url)
        try:
            client.videos.generations(model="viduq1-text", prompt="a fox")
        except APIAuthenticationError as e:
            assert e.status_code == 401 and '"1002"' in str(e), e
        else:
            raise AssertionError("a wrong key was accepted")
        jwt = ZhipuAiClient(api_key="sim-key.wrong-secret", base_url=s.sim.base_url, disable_token_cache=False)
        try:
            jwt.videos.generations(model="viduq1-text", prompt="a fox")
        except APIAuthenticationError as e:
            assert '"1002"' in str(e), e
        else:
            raise AssertionError("a token signed with a wrong secret was accepted")
    s.run("a wrong key raises APIAuthenticationError", wrong_key)

    def over_limit():
        before = s.sim.stats()["refused"].get("1302", 0)
        try:
            s.client.videos.generations(model=OVER_LIMIT_MODEL, prompt="a fox", quality="speed")
        except APIReachLimitError as e:
            assert e.status_code == 429 and '"1302"' in str(e), e
        else:
            raise AssertionError("the over-limit submit was accepted")
        tries = s.sim.stats()["refused"].get("1302", 0) - before
        # The SDK retries every 429 itself (zai.core._http_client.HttpClient._should_retry,
        # ZAI_DEFAULT_MAX_RETRIES = 3): four tries in all.
        assert tries == 4, f"the SDK tried {tries} times"
    s.run("1302 over the limit raises APIReachLimitError", over_limit)


if __name__ == "__main__":
    sys.exit(main())
