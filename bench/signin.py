#!/usr/bin/env python3
"""Times asking the portal for a sign-in code, for addresses on file and addresses not on
file, interleaved, each request from its own loopback address (so the per-client throttle
does not mix in), against a running `custos serve`. Prints the median and p90 of each and
their difference. Used by bench/signin.sh; arguments: BASE_URL ADMIN_KEY N."""
import http.client, json, statistics, sys, time, urllib.parse

base, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = urllib.parse.urlparse(base).hostname, urllib.parse.urlparse(base).port

def conn(i):
    return http.client.HTTPConnection(host, port, timeout=30, source_address=(f"127.0.{1 + i // 250}.{1 + i % 250}", 0))

def create(i):
    c = conn(0)
    body = json.dumps({"fields": {"name": f"Bench {i}", "email": f"bench{i}@example.com"}})
    c.request("POST", "/v1/collections/customers/records", body,
              {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status

def ask(i, email):
    c = conn(i)
    c.request("GET", "/portal/signin")
    r = c.getresponse(); page = r.read().decode()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    at = page.index('name="csrf" value="') + 19
    csrf = page[at:page.index('"', at)]
    form = urllib.parse.urlencode({"csrf": csrf, "email": email})
    t = time.perf_counter()
    c.request("POST", "/portal/signin", form,
              {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); r.read()
    took = (time.perf_counter() - t) * 1000
    assert r.status == 303, r.status
    return took

known_addresses = (n + 3) // 4  # at most five codes per address in the window
for i in range(known_addresses):
    create(i)
known, unknown = [], []
for i in range(n):
    known.append(ask(2 * i, f"bench{i % known_addresses}@example.com"))
    unknown.append(ask(2 * i + 1, f"nobody{i}@example.com"))

def line(name, xs):
    xs = sorted(xs)
    p90 = xs[int(0.9 * (len(xs) - 1))]
    print(f"{name:>12}: median {statistics.median(xs):7.1f} ms   p90 {p90:7.1f} ms   (n={len(xs)})")
    return statistics.median(xs)

a = line("on file", known)
b = line("not on file", unknown)
print(f"  difference of medians: {a - b:+.1f} ms ({(a / b - 1) * 100:+.1f} %)")
