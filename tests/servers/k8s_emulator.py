#!/usr/bin/env python3
"""A small Kubernetes API server emulator for drillbook's integration tests.

    python k8s_emulator.py PORT [--host 127.0.0.1] [--state-file PATH] [--ready-delay SECONDS]

It serves plain HTTP on HOST:PORT and prints "ready" on stdout once it listens. It uses only
the standard library, and is exercised with the real `kubectl` by tests/k8s_emulator.rs;
tests/support/k8s.rs starts it.

What it implements
------------------
- Discovery: /version, /api, /api/v1, /apis, and /apis/GROUP and /apis/GROUP/v1 for the groups
  apps, batch and networking.k8s.io, in the legacy form and, when the client asks for it in
  Accept, the aggregated form (apidiscovery.k8s.io/v2 and v2beta1) that kubectl >= 1.30
  prefers, with the real short names and the "all" category (what `kubectl get all` expands).
  /openapi/v3 holds only PATCH operations tagged with their kind and a fieldValidation
  parameter: what kubectl create/apply look for to leave validation to the server (with no
  OpenAPI at all they refuse to run without --validate=false). Having no schemas, kubectl
  apply builds its patches from its compiled-in types. /openapi/v2 is a 404.
- Request bodies in JSON (YAML only when it is JSON), and protobuf for the kinds kubectl's
  generators send that way (typed clients, no JSON fallback): `kubectl create namespace`,
  `create deployment`, `create configmap`, `create secret generic|tls|docker-registry`,
  `create cronjob` and `create ingress`.
- Resources: namespaces, pods, events (always empty), configmaps, secrets, apps/v1
  deployments, replicasets and statefulsets, batch/v1 cronjobs, and networking.k8s.io/v1
  networkpolicies and ingresses: list (labelSelector, fieldSelector, all namespaces), get,
  create, replace, patch (JSON merge, strategic merge with the directives kubectl sends, JSON
  patch, and apply-patch treated as a strategic merge that may create), delete (with
  propagationPolicy and owner-reference garbage collection), deletecollection, watch, the
  status subresource, and the scale subresource (autoscaling/v1 Scale) for the three workload
  kinds. Every kind goes through the same registry (KINDS), so the forbid hook and the Table,
  metadata and watch forms apply to all of them.
- ConfigMaps, Secrets, CronJobs, NetworkPolicies and Ingresses are stored and served with the
  real defaults (Secret type Opaque; CronJob concurrencyPolicy Allow, suspend false, history
  limits 3/1 and the pod defaults in its job template; NetworkPolicy podSelector {},
  policyTypes and port protocols; status {} and {"loadBalancer": {}} for CronJobs and
  Ingresses) and validation (config keys, immutable ConfigMaps and Secrets, Secret type
  immutable; cron schedules as robfig/cron parses them, time zones, CronJob names of at most
  52 characters and a job restartPolicy of OnFailure or Never; Ingress hosts, paths and path
  types; NetworkPolicy policyTypes). CronJobs and Ingresses have a status subresource. No
  controller acts on them: a CronJob never fires (ACTIVE 0, LAST SCHEDULE <none> unless a
  client writes its status) and an Ingress gets no ADDRESS unless its status is written.
- Secrets decode as on the real server: data values must be base64 (else 400 BadRequest
  'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte N',
  N as Go computes it; from a patch, 422 Invalid on "patch"), and stringData, on create,
  replace or patch, is base64-encoded into data (its values win) and never stored. ConfigMap
  binaryData is checked the same way.
- Every object has uid, creationTimestamp and a resourceVersion from one global counter;
  workload kinds have generation and observedGeneration, CronJobs, NetworkPolicies and
  Ingresses a generation. Optimistic concurrency: a PUT with a
  stale resourceVersion answers 409 Conflict. Names are validated (422 Invalid), as are
  workload selectors and containers; objects in a missing namespace answer 404.
- Watch (?watch=true, or the legacy /watch/ path prefix): chunked newline-delimited events
  from resourceVersion, or synthetic ADDED events for the current state when it is unset or
  "0"; selectors are applied to old and new objects as the real server does (an object that
  stops matching is sent as DELETED); timeoutSeconds; BOOKMARK events with
  allowWatchBookmarks; sendInitialEvents (streaming lists) with the initial-events-end
  bookmark. A resourceVersion older than the bounded event history gets, like the real
  server, HTTP 200 and an ERROR event holding a 410 Expired Status (a reflector or kube-rs
  watcher then relists).
- Output forms picked by Accept: plain JSON, meta.k8s.io Table (with the columns the real
  server prints for deployments, replicasets, statefulsets, pods, namespaces, configmaps
  (NAME DATA AGE), secrets (NAME TYPE DATA AGE), cronjobs (NAME SCHEDULE TIMEZONE SUSPEND
  ACTIVE LAST SCHEDULE AGE, then CONTAINERS IMAGES SELECTOR with -o wide), networkpolicies
  (NAME POD-SELECTOR AGE) and ingresses (NAME CLASS HOSTS ADDRESS PORTS AGE), also in watches)
  and PartialObjectMetadata(List) (kube-rs metadata watchers).
- pods/log with container, follow, tailLines, timestamps, sinceSeconds, limitBytes and
  previous; "waiting to start" errors while a container is not running, as the kubelet gives.
- Controllers, run after every write and on a 50 ms tick:
  - Deployments: one ReplicaSet per pod template (named NAME-HASH with the real hash
    alphabet, pod-template-hash label, deployment.kubernetes.io/revision annotations,
    controller ownerReference), a RollingUpdate that honours maxSurge and maxUnavailable (so a
    broken new image leaves the old pods serving) or Recreate, paused deployments,
    revisionHistoryLimit, status counts and Available/Progressing conditions including
    ProgressDeadlineExceeded.
  - ReplicaSets create pods NAME-xxxxx and delete surplus ones (not ready and newest first).
  - StatefulSets create NAME-0..N-1 in order (or in parallel), scale down from the highest
    ordinal and roll template changes one pod at a time.
  - A kubelet: pods are Pending (ContainerCreating) for the ready delay, then Running and
    Ready; deleted pods stay Terminating (deletionTimestamp) for a short while before they go.
  - A garbage collector for dependents whose controller owner is gone, and namespace deletion.
- Test hooks, all JSON over POST unless noted, under /emulator/:
    reset                      forget everything (resourceVersions keep increasing)
    settings                   {"ready_delay_seconds", "terminating_seconds",
                                "crash_restart_seconds", "bookmark_interval_seconds",
                                "history_limit"}: change any of them; answers all of them
    image-failure              {"image_contains", "reason": "CrashLoopBackOff" | "Error" |
                                "OOMKilled" | "ImagePullBackOff" | "ErrImagePull" | null (clears),
                                "log": [...], "exit_code"}: pods whose image contains the text
                                fail that way (the first three crash-loop)
    logs                       {"namespace", "pod", "container"?, "lines": [...]}: append log lines
    forbid                     {"verb", "resource", "namespace"?, "name"?, "code"? (403),
                                "times"?, "user"?}: answer matching requests with that error
                                (403 gives the real "... is forbidden: User ..." Status)
    allow                      {}: remove every forbid rule
    drop-watches               {"abrupt": bool}: end every open watch and log stream
                                (abrupt: cut the connection instead of ending the chunked body)
    compact                    {}: forget the event history, so older resourceVersions get 410
    save                       {}: write the state to --state-file (the harness does this
                                before restarting the process)
    GET state                  resourceVersion, settings, rules and the open streams
    GET requests               the last requests (method, path, query, headers, status)

What it does not implement
--------------------------
Authentication and RBAC (any or no token is accepted; only the forbid hook denies), TLS,
HTTP/2, protobuf responses and most protobuf requests (JSON is always answered, which every
client accepts; protobuf bodies decode only the fields kubectl's generators fill in, and any
other field answers 415 rather than being lost), OpenAPI schemas, admission, field
validation (unknown fields pass even with fieldValidation=Strict; a status sent for a kind
without one, ConfigMap, Secret or NetworkPolicy, is dropped), server-side apply field
management (managedFields), limit/continue pagination (lists come whole),
resourceVersionMatch=Exact, Services and Endpoints (so `kubectl describe ingress` shows an
error for each backend), Nodes, ServiceAccounts, Events (listed, always empty), Jobs (so a
CronJob never runs one), IngressClasses, DaemonSets, ControllerRevisions,
exec/attach/port-forward, scheduling, resources, probes (a container is ready once started)
and real rolling-update timing (a step happens each time pods become ready). ReplicaSets do
not adopt orphan pods, and pod status belongs to the emulated kubelet (writes to it are
overwritten). Nothing kube-controller-manager adds: a new namespace gets no kube-root-ca.crt
ConfigMap and no default ServiceAccount, as it would on a real cluster. The keys a Secret's
type requires (tls.crt and tls.key for kubernetes.io/tls...) and Ingress backends are not
validated. Without --state-file, or on a hard kill, a restart loses every object.
"""

import argparse
import base64
import bisect
import copy
import datetime
import functools
import json
import os
import random
import re
import select
import socket
import sys
import threading
import time
import traceback
import uuid
import zoneinfo
from collections import deque, namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# kubectl from the Google Cloud SDK is a dispatcher that picks a kubectl of the server's
# minor version; reporting 1.32 keeps it on the 1.32 client the tests are written against.
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac5afb7ec0",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:02:27Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}

DEFAULT_SETTINGS = {
    # How long a new pod stays Pending (ContainerCreating) before it runs and is ready.
    "ready_delay_seconds": 0.3,
    # How long a deleted pod stays Terminating before it disappears.
    "terminating_seconds": 0.5,
    # A crash-looping container restarts (restartCount + 1) this often.
    "crash_restart_seconds": 1.0,
    # Bookmarks for watches that allow them; the real server sends one about every minute.
    "bookmark_interval_seconds": 5.0,
    # Events kept for watches that resume from a resourceVersion; older ones get 410.
    "history_limit": 5000,
}

# Controllers also run on this tick, for time-driven changes (pods becoming ready, crash
# loops, terminating pods going away).
TICK_SECONDS = 0.05
# A waiting stream checks this often whether its client hung up, so threads don't pile up.
LIVENESS_SECONDS = 0.5
# The real server's alphabet for generated names and pod-template hashes (no vowels, no
# look-alike characters).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NODE_NAME = "emulator-node"
DEFAULT_USER = "test"

# --- the resource registry ------------------------------------------------------------------

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SCALE_KIND = {"group": "autoscaling", "version": "v1", "kind": "Scale"}


class Kind:
    """One resource type: its REST name, kind, group/version and what it supports."""

    def __init__(self, plural, kind, group, version, namespaced, short_names=(), categories=(),
                 subresources=(), generation=False, status_subresource=True):
        self.plural = plural
        self.kind = kind
        self.group = group
        self.version = version
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.subresources = list(subresources)
        # Whether metadata.generation counts spec changes (workload kinds).
        self.generation = generation
        # Whether PUT/PATCH on the object itself keeps the stored status (it has a /status).
        self.status_subresource = status_subresource
        self.api_version = f"{group}/{version}" if group else version
        self.list_kind = kind + "List"
        self.singular = kind.lower()
        # "deployments.apps", as error messages name it.
        self.qualified = f"{plural}.{group}" if group else plural

    def subresource_kind(self, sub):
        if sub == "scale":
            return dict(SCALE_KIND)
        return {"group": self.group, "version": self.version, "kind": self.kind}

    def subresource_verbs(self, sub):
        return ["get"] if sub == "log" else ["get", "patch", "update"]


KINDS = {
    kind.plural: kind
    for kind in [
        Kind("namespaces", "Namespace", "", "v1", False, ["ns"], subresources=["status"]),
        Kind("pods", "Pod", "", "v1", True, ["po"], ["all"], ["log", "status"]),
        Kind("events", "Event", "", "v1", True, ["ev"], status_subresource=False),
        Kind("deployments", "Deployment", "apps", "v1", True, ["deploy"], ["all"], ["scale", "status"], True),
        Kind("replicasets", "ReplicaSet", "apps", "v1", True, ["rs"], ["all"], ["scale", "status"], True),
        Kind("statefulsets", "StatefulSet", "apps", "v1", True, ["sts"], ["all"], ["scale", "status"], True),
        # Configuration and policy kinds: stored and served, no controller acts on them.
        Kind("configmaps", "ConfigMap", "", "v1", True, ["cm"], status_subresource=False),
        Kind("secrets", "Secret", "", "v1", True, status_subresource=False),
        Kind("cronjobs", "CronJob", "batch", "v1", True, ["cj"], ["all"], ["status"], True),
        Kind("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True, ["netpol"], generation=True,
             status_subresource=False),
        Kind("ingresses", "Ingress", "networking.k8s.io", "v1", True, ["ing"], subresources=["status"],
             generation=True),
    ]
}
GROUP_VERSIONS = {"": "v1", "apps": "v1", "batch": "v1", "networking.k8s.io": "v1"}
WORKLOADS = ("deployments", "replicasets", "statefulsets")
# Kinds whose objects have no spec (and no status): data, or a record.
SPECLESS = ("events", "configmaps", "secrets")

# --- errors -----------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code, reason, message, details=None):
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:
        status["reason"] = reason
    if details:
        status["details"] = details
    status["code"] = code
    return status


def not_found(kind, name):
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found',
                    {"name": name, "group": kind.group, "kind": kind.plural})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def invalid(kind, name, causes):
    """422 Invalid; causes are (field, reason, message) like the real field errors."""
    parts = [f"{field}: {message}" for field, _, message in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{kind.kind}{"." + kind.group if kind.group else ""} "{name}" is invalid: {summary}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [{"reason": reason, "message": message, "field": field} for field, reason, message in causes],
        },
    )


def undecodable(kind, message):
    """The real server's 400 for a body it cannot decode into the kind's Go type (a Secret's
    data that is not base64, a number where a string belongs)."""
    return bad_request(f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: {message}')


def patch_invalid(body, message):
    """The real server's 422 for a patch whose result cannot be decoded into the kind's type."""
    value = (body or b"").decode(errors="replace")
    return ApiError(422, "Invalid", f' "" is invalid: patch: Invalid value: "{value}": {message}',
                    {"causes": [{"reason": "FieldValueInvalid", "message": f'Invalid value: "{value}": {message}',
                                 "field": "patch"}]})


def conflict(kind, name):
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


PAGE_NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource",
                          {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})

# --- small helpers ------------------------------------------------------------------------------


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_nano():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    try:
        stamp = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
        return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def human_duration(seconds):
    """k8s.io/apimachinery's duration.HumanDuration, as kubectl's AGE column shows it."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(obj):
    created = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration(time.time() - created)


def random_suffix(length=5):
    return "".join(random.choice(SAFE_ALPHABET) for _ in range(length))


def template_hash(template):
    """The pod-template-hash: FNV-1a 32 of the template, its decimal digits mapped onto the safe
    alphabet as the real controller's rand.SafeEncodeString does (so names look real)."""
    clean = without_nulls(template)
    clean.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    value = 0x811C9DC5
    for byte in json.dumps(clean, sort_keys=True).encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[ord(digit) % len(SAFE_ALPHABET)] for digit in str(value))


def without_nulls(value):
    """A copy without null-valued keys: the real server decodes into Go structs, where null and
    absent are the same (kubectl sends template "creationTimestamp": null, for one)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def meta(obj):
    return obj.setdefault("metadata", {})


def deleting(obj):
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def controller_uid(obj):
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def rs_revision(rs):
    return int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0"))


def rs_replicas(rs):
    return rs["spec"].get("replicas", 0)


def rs_available(rs):
    return rs.get("status", {}).get("availableReplicas", 0)


def orphan(obj, owner_uid):
    """Drops the owner's reference, and the field with its last one, as the garbage collector."""
    refs = [ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("uid") != owner_uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def owner_reference(owner, kind):
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def int_or_percent(value, total, round_up):
    """maxSurge/maxUnavailable: an int, or "25%" of total rounded as the real controller does."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            return 0
        scaled = total * percent
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def without_rv(obj):
    """obj without the fields that change on every write, to tell real changes from no-ops."""
    clean = dict(obj)
    metadata = dict(clean.get("metadata", {}))
    metadata.pop("resourceVersion", None)
    metadata.pop("generation", None)
    clean["metadata"] = metadata
    return clean


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def go_base64_error(text):
    """Where Go's base64.StdEncoding.DecodeString gives up on text (the byte offset its
    "illegal base64 data at input byte N" names), or None when it decodes. The real server
    decodes Secret data and ConfigMap binaryData that way: padding required, CR/LF skipped."""
    src = text.encode()
    si, end = 0, len(src)
    while True:
        j = 0  # base64 characters of the current quantum
        while j < 4:
            if si == end:
                return None if j == 0 else si - j
            char = src[si]
            si += 1
            if char in BASE64_ALPHABET:
                j += 1
                continue
            if char in (10, 13):
                continue
            if char != ord("=") or j < 2:
                return si - 1
            if j == 2:
                # "==" is expected; the first "=" is consumed.
                while si < end and src[si] in (10, 13):
                    si += 1
                if si == end:
                    return end
                if src[si] != ord("="):
                    return si - 1
                si += 1
            while si < end and src[si] in (10, 13):
                si += 1
            return si if si < end else None


def go_json_type(value):
    """How Go's encoding/json names a JSON value's type in an unmarshal error."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "null")


def decode_data_fields(kind, obj, error):
    """What decoding a v1 Secret or ConfigMap does before anything else sees it: base64
    values (Secret data, ConfigMap binaryData) must decode, string maps must hold strings,
    and a Secret's stringData is merged into data (its values win) and dropped, as the
    real conversion to the internal type does. error(message) builds the ApiError to raise;
    empty maps are dropped, as omitempty does on the way out."""
    if kind.plural not in ("secrets", "configmaps"):
        return
    binary, text = ("data", "stringData") if kind.plural == "secrets" else ("binaryData", "data")
    for field, byte_values in ((binary, True), (text, False)):
        values = obj.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise error(f"json: cannot unmarshal {go_json_type(values)} into Go struct field {kind.kind}.{field} of "
                        f"type map[string]{'[]uint8' if byte_values else 'string'}")
        for key, value in values.items():
            if value is None:
                values[key] = ""
            elif not isinstance(value, str):
                raise error(f"json: cannot unmarshal {go_json_type(value)} into Go struct field {kind.kind}.{field} of "
                            f"type {'[]uint8' if byte_values else 'string'}")
            elif byte_values and go_base64_error(value) is not None:
                raise error(f"illegal base64 data at input byte {go_base64_error(value)}")
    if kind.plural == "secrets" and "stringData" in obj:
        string_data = obj.pop("stringData") or {}
        if string_data:
            data = dict(obj.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode()
            obj["data"] = data
    for field in (binary, text):
        if field in obj and not obj[field]:
            del obj[field]

# --- selectors ------------------------------------------------------------------------------------


def split_selector(text):
    """Splits on commas outside parentheses ("a in (x,y),b" has two parts)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def parse_label_selector(text):
    """A list of predicates over a labels dict, from the labelSelector query syntax."""
    predicates = []
    for part in split_selector(text or ""):
        match = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", part)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if op == "in":
                predicates.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                predicates.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
            continue
        match = re.match(r"^(\S+?)\s*(==|!=|=)\s*(\S*)$", part)
        if match:
            key, op, value = match.groups()
            if op == "!=":
                predicates.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                predicates.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        match = re.match(r"^(!?)([A-Za-z0-9./_-]+)$", part)
        if match:
            negate, key = match.groups()
            if negate:
                predicates.append(lambda labels, k=key: k not in labels)
            else:
                predicates.append(lambda labels, k=key: k in labels)
            continue
        raise bad_request(f"unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt")
    return predicates


def parse_field_selector(text):
    """Predicates over a whole object for fieldSelector (metadata.name=x, status.phase!=Running)."""
    predicates = []
    for part in split_selector(text or ""):
        match = re.match(r"^([A-Za-z0-9._]+)\s*(==|!=|=)\s*(.*)$", part)
        if not match:
            raise bad_request(f'invalid selector: \'{part}\'; can\'t understand \'{part}\'')
        path, op, value = match.groups()

        def lookup(obj, path=path):
            current = obj
            for step in path.split("."):
                if not isinstance(current, dict):
                    return ""
                current = current.get(step)
            return "" if current is None else str(current)

        if op == "!=":
            predicates.append(lambda obj, f=lookup, v=value: f(obj) != v)
        else:
            predicates.append(lambda obj, f=lookup, v=value: f(obj) == v)
    return predicates


def selector_string(selector):
    """metav1.LabelSelectorAsSelector(...).String(): what Scale status and kubectl show."""
    if not selector:
        return ""
    parts = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts))


def selector_matches(selector, labels):
    return all(predicate(labels) for predicate in parse_label_selector(selector_string(selector)))


# --- patches ------------------------------------------------------------------------------------

# Lists that strategic merge patch merges by a key instead of replacing (from the Kubernetes
# types' patchMergeKey tags); the key is looked up by the list's field name.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
# Lists of scalars that strategic merge patch treats as sets.
MERGE_SCALAR_LISTS = {"finalizers"}


def json_merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


_DELETE = object()


def strategic_merge_patch(target, patch):
    """The parts of strategic merge patch that kubectl and kube-rs send: merge-keyed lists,
    $patch (replace/delete/merge), $setElementOrder, $retainKeys, $deleteFromPrimitiveList,
    and null deleting a field."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field) or [] if item not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and key in MERGE_SCALAR_LISTS:
            current = list(result.get(key) or [])
            result[key] = current + [item for item in value if item not in current]
        elif isinstance(value, list) and (key in MERGE_KEYS or key == "ports"):
            result[key] = merge_keyed_list(result.get(key) or [], value, key, patch.get(f"$setElementOrder/{key}"))
        else:
            result[key] = copy.deepcopy(value)
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and key.split("/", 1)[1] not in patch:
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = order_by(result[field], order, list_merge_key(field, result[field] + order))
    if isinstance(patch.get("$retainKeys"), list):
        keep = set(patch["$retainKeys"])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def list_merge_key(field, items):
    if field == "ports":
        # Container ports merge on containerPort, service ports on port.
        return "containerPort" if any("containerPort" in item for item in items if isinstance(item, dict)) else "port"
    return MERGE_KEYS[field]


def merge_keyed_list(current, patch_items, field, order):
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch_items):
        return [copy.deepcopy(item) for item in patch_items if not (isinstance(item, dict) and "$patch" in item)]
    key = list_merge_key(field, current + patch_items)
    result = copy.deepcopy(current)
    for item in patch_items:
        if not isinstance(item, dict):
            result.append(copy.deepcopy(item))
            continue
        index = next((i for i, old in enumerate(result)
                      if isinstance(old, dict) and old.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return order_by(result, order, key) if order else result


def order_by(items, order, key):
    """Sorts items as $setElementOrder lists them; items it does not name keep their place at
    the end."""
    rank = {entry.get(key) if isinstance(entry, dict) else entry: i for i, entry in enumerate(order or [])}
    return sorted(items, key=lambda item: rank.get(item.get(key) if isinstance(item, dict) else item, len(rank)))


def json_patch(target, operations):
    """RFC 6902."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be an array of operations")
    document = copy.deepcopy(target)

    def split(pointer):
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise ApiError(422, "Invalid", f"invalid JSON pointer {pointer!r}")
        return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]

    def parent(doc, parts):
        current = doc
        for part in parts[:-1]:
            current = current[int(part)] if isinstance(current, list) else current[part]
        return current

    def get(doc, pointer):
        current = doc
        for part in split(pointer):
            current = current[int(part)] if isinstance(current, list) else current[part]
        return current

    def add(doc, pointer, value):
        parts = split(pointer)
        if not parts:
            return value
        container, last = parent(doc, parts), parts[-1]
        if isinstance(container, list):
            container.insert(len(container) if last == "-" else int(last), value)
        else:
            container[last] = value
        return doc

    def remove(doc, pointer):
        parts = split(pointer)
        container, last = parent(doc, parts), parts[-1]
        if isinstance(container, list):
            return container.pop(int(last))
        return container.pop(last)

    for op in operations:
        try:
            name, path = op["op"], op.get("path", "")
            if name == "add":
                document = add(document, path, copy.deepcopy(op["value"]))
            elif name == "remove":
                remove(document, path)
            elif name == "replace":
                get(document, path)  # must exist
                if split(path):
                    remove(document, path)
                document = add(document, path, copy.deepcopy(op["value"]))
            elif name == "move":
                value = remove(document, op["from"])
                document = add(document, path, value)
            elif name == "copy":
                document = add(document, path, copy.deepcopy(get(document, op["from"])))
            elif name == "test":
                if get(document, path) != op.get("value"):
                    raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                                   f"testing value {path} failed")
            else:
                raise bad_request(f"Unexpected kind: {name}")
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                           f"{op.get('op')} {op.get('path')}: {err}") from None
    return document


def apply_patch(content_type, target, body):
    """Applies a PATCH body of the given Content-Type to target (a dict)."""
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        patch = json.loads(body or b"null")
    except ValueError:
        # The apply-patch+yaml form may be real YAML; kube-rs and kubectl send JSON.
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                                                    "media types include: application/json-patch+json, "
                                                    "application/merge-patch+json, application/apply-patch+yaml "
                                                    "(JSON only here)") from None
    if media == "application/json-patch+json":
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise bad_request("patch body must be a JSON object")
    if media == "application/merge-patch+json":
        return json_merge_patch(target, patch)
    if media in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
        result = strategic_merge_patch(target, patch)
        return {} if result is _DELETE else result
    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media "
                                                "types include: application/json-patch+json, "
                                                "application/merge-patch+json, application/apply-patch+yaml, "
                                                "application/strategic-merge-patch+json")


# --- protobuf request bodies ----------------------------------------------------------------------
#
# kubectl's typed-client generators (`kubectl create namespace`, `deployment`, `configmap`,
# `secret`, `cronjob`, `ingress`) send protobuf, not JSON, and client-go does not retry in
# JSON on 415. Those objects are decoded here from their field numbers in k8s.io/api's
# generated.proto; any field outside these tables answers 415 rather than being dropped
# without a word. kube-rs and the dynamic-client commands (`create -f`, `apply`, patches)
# always send JSON.

PROTOBUF_MAGIC = b"k8s\x00"
PB_OBJECT_META = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                  5: ("uid", "string"), 6: ("resourceVersion", "string"), 7: ("generation", "int"),
                  8: ("creationTimestamp", "time"), 11: ("labels", "map"), 12: ("annotations", "map"),
                  14: ("finalizers", "string", True)}
PB_CONTAINER = {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "string", True),
                4: ("args", "string", True), 5: ("workingDir", "string"),
                6: ("ports", {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                              4: ("protocol", "string"), 5: ("hostIP", "string")}, True),
                7: ("env", {1: ("name", "string"), 2: ("value", "string")}, True),
                8: ("resources", {1: ("limits", "quantities"), 2: ("requests", "quantities")}),
                13: ("terminationMessagePath", "string"), 14: ("imagePullPolicy", "string"),
                20: ("terminationMessagePolicy", "string")}
PB_POD_SPEC = {2: ("containers", PB_CONTAINER, True), 3: ("restartPolicy", "string"),
               4: ("terminationGracePeriodSeconds", "int"), 6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map"),
               8: ("serviceAccountName", "string"), 19: ("schedulerName", "string"),
               20: ("initContainers", PB_CONTAINER, True)}
PB_DEPLOYMENT_SPEC = {
    1: ("replicas", "int"),
    2: ("selector", {1: ("matchLabels", "map"), 2: ("matchExpressions", {
        1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "string", True)}, True)}),
    3: ("template", {1: ("metadata", PB_OBJECT_META), 2: ("spec", PB_POD_SPEC)}),
    4: ("strategy", {1: ("type", "string"), 2: ("rollingUpdate", {1: ("maxUnavailable", "intorstring"),
                                                                  2: ("maxSurge", "intorstring")})}),
    5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"),
    9: ("progressDeadlineSeconds", "int"),
}
PB_LABEL_SELECTOR = PB_DEPLOYMENT_SPEC[2][1]
PB_POD_TEMPLATE = PB_DEPLOYMENT_SPEC[3][1]
# `kubectl create cronjob`: batch/v1 CronJobSpec, its JobTemplateSpec and JobSpec.
PB_JOB_SPEC = {1: ("parallelism", "int"), 2: ("completions", "int"), 3: ("activeDeadlineSeconds", "int"),
               4: ("selector", PB_LABEL_SELECTOR), 5: ("manualSelector", "bool"), 6: ("template", PB_POD_TEMPLATE),
               7: ("backoffLimit", "int"), 8: ("ttlSecondsAfterFinished", "int"), 9: ("completionMode", "string"),
               10: ("suspend", "bool"), 12: ("backoffLimitPerIndex", "int"), 13: ("maxFailedIndexes", "int"),
               14: ("podReplacementPolicy", "string"), 15: ("managedBy", "string")}
PB_CRONJOB_SPEC = {1: ("schedule", "string"), 2: ("startingDeadlineSeconds", "int"),
                   3: ("concurrencyPolicy", "string"), 4: ("suspend", "bool"),
                   5: ("jobTemplate", {1: ("metadata", PB_OBJECT_META), 2: ("spec", PB_JOB_SPEC)}),
                   6: ("successfulJobsHistoryLimit", "int"), 7: ("failedJobsHistoryLimit", "int"),
                   8: ("timeZone", "string")}
# `kubectl create ingress`: networking/v1 IngressSpec. A rule's IngressRuleValue (field 2) is
# inlined in JSON: its `http` sits in the rule itself (a None name says so).
PB_INGRESS_BACKEND = {
    3: ("resource", {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")}),
    4: ("service", {1: ("name", "string"), 2: ("port", {1: ("name", "string"), 2: ("number", "int")})}),
}
PB_INGRESS_SPEC = {
    1: ("defaultBackend", PB_INGRESS_BACKEND),
    2: ("tls", {1: ("hosts", "string", True), 2: ("secretName", "string")}, True),
    3: ("rules", {1: ("host", "string"), 2: (None, {1: ("http", {1: ("paths", {
        1: ("path", "string"), 2: ("backend", PB_INGRESS_BACKEND), 3: ("pathType", "string")}, True)})})}, True),
    4: ("ingressClassName", "string"),
}
# Go pointer fields: sent only when set, so a zero is meant. Every other scalar is a
# non-pointer Go field, always on the wire, whose zero means "not set" (omitempty in JSON).
PB_POINTERS = {"replicas", "revisionHistoryLimit", "progressDeadlineSeconds", "terminationGracePeriodSeconds",
               "immutable", "suspend", "timeZone", "startingDeadlineSeconds", "successfulJobsHistoryLimit",
               "failedJobsHistoryLimit", "parallelism", "completions", "activeDeadlineSeconds", "manualSelector",
               "backoffLimit", "ttlSecondsAfterFinished", "completionMode", "backoffLimitPerIndex",
               "maxFailedIndexes", "podReplacementPolicy", "managedBy", "ingressClassName"}
PB_KINDS = {
    ("v1", "Namespace"): {1: ("metadata", PB_OBJECT_META), 2: ("spec", {1: ("finalizers", "string", True)}),
                          3: ("status", "ignore")},
    ("apps/v1", "Deployment"): {1: ("metadata", PB_OBJECT_META), 2: ("spec", PB_DEPLOYMENT_SPEC),
                                3: ("status", "ignore")},
    # `kubectl create configmap` and `kubectl create secret generic|tls|docker-registry`.
    ("v1", "ConfigMap"): {1: ("metadata", PB_OBJECT_META), 2: ("data", "map"), 3: ("binaryData", "bytesmap"),
                          4: ("immutable", "bool")},
    ("v1", "Secret"): {1: ("metadata", PB_OBJECT_META), 2: ("data", "bytesmap"), 3: ("type", "string"),
                       4: ("stringData", "map"), 5: ("immutable", "bool")},
    ("batch/v1", "CronJob"): {1: ("metadata", PB_OBJECT_META), 2: ("spec", PB_CRONJOB_SPEC), 3: ("status", "ignore")},
    ("networking.k8s.io/v1", "Ingress"): {1: ("metadata", PB_OBJECT_META), 2: ("spec", PB_INGRESS_SPEC),
                                          3: ("status", "ignore")},
}


def protobuf_fields(data):
    """(field number, wire type, value) triples of one protobuf message."""
    fields, i = [], 0

    def varint():
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields.append((number, wire, varint()))
        elif wire == 2:
            length = varint()
            fields.append((number, wire, data[i:i + length]))
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            fields.append((number, wire, int.from_bytes(data[i:i + size], "little")))
            i += size
        else:
            raise ValueError(f"wire type {wire}")
    return fields


def protobuf_message(data, schema, where):
    result = {}
    for number, _, value in protobuf_fields(data):
        if number not in schema:
            if value in (b"", 0):
                continue  # an empty or zero field says nothing
            raise ApiError(415, "UnsupportedMediaType", f"the emulator cannot decode protobuf field {number} of "
                                                        f"{where}; send JSON (kubectl create -f / apply -f do)")
        name, kind, *repeated = schema[number]
        if kind == "ignore":
            continue
        if kind in ("map", "quantities", "bytesmap"):
            entry = {n: v for n, _, v in protobuf_fields(value)}
            item_value = entry.get(2, b"")
            if kind == "quantities":
                item_value = {n: v for n, _, v in protobuf_fields(item_value)}.get(1, b"")
            # map<string, bytes> is base64 in JSON (Secret data, ConfigMap binaryData).
            text = base64.b64encode(item_value).decode() if kind == "bytesmap" else item_value.decode()
            result.setdefault(name, {})[entry.get(1, b"").decode()] = text
            continue
        if kind == "string":
            decoded = value.decode()
        elif kind == "int":
            decoded = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            decoded = bool(value)
        elif kind == "time":
            seconds = {n: v for n, _, v in protobuf_fields(value)}.get(1, 0)
            decoded = None if not seconds else datetime.datetime.fromtimestamp(
                seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "intorstring":
            parts = {n: v for n, _, v in protobuf_fields(value)}
            decoded = parts.get(3, b"").decode() if parts.get(1) == 1 else parts.get(2, 0)
        else:
            decoded = protobuf_message(value, kind, f"{where}.{name or 'inline'}")
        if name is None:
            result.update(decoded)  # an inlined struct: its fields are the parent's
            continue
        if repeated:
            result.setdefault(name, []).append(decoded)
        elif decoded not in ("", 0, False, None) or isinstance(decoded, dict) or name in PB_POINTERS:
            result[name] = decoded
    return result


def decode_protobuf_object(body):
    """A runtime.Unknown envelope (magic, TypeMeta, raw) to the JSON form of its object."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise bad_request("a protobuf body must start with the k8s\\0 magic")
    try:
        envelope = {n: v for n, _, v in protobuf_fields(body[len(PROTOBUF_MAGIC):])}
        type_meta = {n: v.decode() for n, _, v in protobuf_fields(envelope.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        schema = PB_KINDS.get((api_version, kind))
        if schema is None:
            raise ApiError(415, "UnsupportedMediaType", f"the emulator decodes protobuf only for "
                                                        f"{sorted(k for _, k in PB_KINDS)}, not {api_version} {kind}; "
                                                        f"send JSON")
        obj = protobuf_message(envelope.get(2, b""), schema, kind)
    except (ValueError, IndexError, UnicodeDecodeError) as err:
        raise bad_request(f"the object provided is unrecognized or could not be decoded: {err}") from None
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj


# --- pod status as kubectl prints it --------------------------------------------------------------


def pod_display(pod):
    """(ready containers, containers, STATUS, restarts, last restart time) as kubectl's printPod."""
    status = pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Pending"
    ready = restarts = 0
    last_restart = None
    statuses = status.get("containerStatuses") or []
    for container in reversed(statuses):
        restarts += container.get("restartCount", 0)
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            reason = f"ExitCode:{state['terminated'].get('exitCode', 0)}"
        elif container.get("ready") and state.get("running"):
            ready += 1
    if deleting(pod):
        reason = "Terminating"
    total = len(pod.get("spec", {}).get("containers") or [])
    return ready, total, reason, restarts, last_restart


def pod_ready(pod):
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# --- tables ------------------------------------------------------------------------------------------


def column(name, type_="string", priority=0, format_=""):
    return {"name": name, "type": type_, "format": format_, "description": "", "priority": priority}


def containers_and_images(template):
    containers = (template or {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def table_columns(kind):
    if kind.plural == "deployments":
        return [column("Name", format_="name"), column("Ready"), column("Up-to-date", "integer"),
                column("Available", "integer"), column("Age"), column("Containers", priority=1),
                column("Images", priority=1), column("Selector", priority=1)]
    if kind.plural == "replicasets":
        return [column("Name", format_="name"), column("Desired", "integer"), column("Current", "integer"),
                column("Ready", "integer"), column("Age"), column("Containers", priority=1),
                column("Images", priority=1), column("Selector", priority=1)]
    if kind.plural == "statefulsets":
        return [column("Name", format_="name"), column("Ready"), column("Age"), column("Containers", priority=1),
                column("Images", priority=1)]
    if kind.plural == "pods":
        return [column("Name", format_="name"), column("Ready"), column("Status"), column("Restarts"), column("Age"),
                column("IP", priority=1), column("Node", priority=1), column("Nominated Node", priority=1),
                column("Readiness Gates", priority=1)]
    if kind.plural == "namespaces":
        return [column("Name", format_="name"), column("Status"), column("Age")]
    if kind.plural == "configmaps":
        return [column("Name", format_="name"), column("Data"), column("Age")]
    if kind.plural == "secrets":
        return [column("Name", format_="name"), column("Type"), column("Data"), column("Age")]
    if kind.plural == "cronjobs":
        return [column("Name", format_="name"), column("Schedule"), column("Timezone"), column("Suspend", "boolean"),
                column("Active", "integer"), column("Last Schedule"), column("Age"), column("Containers", priority=1),
                column("Images", priority=1), column("Selector", priority=1)]
    if kind.plural == "networkpolicies":
        return [column("Name", format_="name"), column("Pod-Selector"), column("Age")]
    if kind.plural == "ingresses":
        return [column("Name", format_="name"), column("Class"), column("Hosts"), column("Address"), column("Ports"),
                column("Age")]
    return [column("Name", format_="name"), column("Created At", "date")]


def format_label_selector(selector):
    """metav1.FormatLabelSelector: the selector's string, "<none>" when it selects by nothing."""
    return selector_string(selector) or "<none>"


def ingress_hosts(rules):
    """The HOSTS column: the first three rules' hosts, "*" when none has one."""
    hosts, more = [], False
    for rule in rules or []:
        if len(hosts) == 3:
            more = True
        if not more and isinstance(rule, dict) and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    return ",".join(hosts) + (f" + {len(rules) - 3} more..." if more else "")


def ingress_address(status):
    """The ADDRESS column: the load balancer's IPs and host names, sorted, unique (the server
    prints tables wide, so they are never cut short)."""
    points = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(sorted({p.get("ip") or p.get("hostname") for p in points
                            if isinstance(p, dict) and (p.get("ip") or p.get("hostname"))}))


def table_cells(kind, obj):
    spec, status, name = obj.get("spec", {}), obj.get("status", {}), obj["metadata"]["name"]
    if kind.plural == "deployments":
        containers, images = containers_and_images(spec.get("template"))
        return [name, f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", status.get("updatedReplicas", 0),
                status.get("availableReplicas", 0), age(obj), containers, images, selector_string(spec.get("selector"))]
    if kind.plural == "replicasets":
        containers, images = containers_and_images(spec.get("template"))
        return [name, spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0), age(obj),
                containers, images, selector_string(spec.get("selector"))]
    if kind.plural == "statefulsets":
        containers, images = containers_and_images(spec.get("template"))
        return [name, f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", age(obj), containers, images]
    if kind.plural == "pods":
        ready, total, reason, restarts, last_restart = pod_display(obj)
        restarts_text = str(restarts)
        if restarts and last_restart and parse_time(last_restart) is not None:
            restarts_text += f" ({human_duration(time.time() - parse_time(last_restart))} ago)"
        return [name, f"{ready}/{total}", reason, restarts_text, age(obj), status.get("podIP") or "<none>",
                spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", "<none>"]
    if kind.plural == "namespaces":
        return [name, status.get("phase", "Active"), age(obj)]
    if kind.plural == "configmaps":
        return [name, len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age(obj)]
    if kind.plural == "secrets":
        return [name, obj.get("type", ""), len(obj.get("data") or {}), age(obj)]
    if kind.plural == "cronjobs":
        suspend = spec.get("suspend")
        last = parse_time(status.get("lastScheduleTime"))
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        containers, images = containers_and_images(job_spec.get("template"))
        return [name, spec.get("schedule", ""), spec.get("timeZone") or "<none>",
                "<unset>" if suspend is None else str(bool(suspend)), len(status.get("active") or []),
                "<none>" if last is None else human_duration(time.time() - last), age(obj), containers, images,
                format_label_selector(job_spec.get("selector"))]
    if kind.plural == "networkpolicies":
        return [name, format_label_selector(spec.get("podSelector")), age(obj)]
    if kind.plural == "ingresses":
        return [name, spec.get("ingressClassName") or "<none>", ingress_hosts(spec.get("rules")),
                ingress_address(status), "80, 443" if spec.get("tls") else "80", age(obj)]
    return [name, obj["metadata"].get("creationTimestamp")]


def partial_metadata(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": copy.deepcopy(obj["metadata"])}


def table(kind, objects, resource_version, table_version, include_object):
    rows = []
    for obj in objects:
        row = {"cells": table_cells(kind, obj)}
        if include_object == "Object":
            row["object"] = with_type(kind, obj)
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": {"resourceVersion": str(resource_version)},
        "columnDefinitions": table_columns(kind),
        "rows": rows,
    }


def with_type(kind, obj):
    typed = {"kind": kind.kind, "apiVersion": kind.api_version}
    typed.update(obj)
    return typed


# --- discovery ------------------------------------------------------------------------------------


def legacy_resource_list(group):
    version = GROUP_VERSIONS[group]
    resources = []
    for kind in KINDS.values():
        if kind.group != group:
            continue
        entry = {"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
                 "kind": kind.kind, "verbs": ALL_VERBS}
        if kind.short_names:
            entry["shortNames"] = kind.short_names
        if kind.categories:
            entry["categories"] = kind.categories
        resources.append(entry)
        for sub in kind.subresources:
            sub_kind = kind.subresource_kind(sub)
            sub_entry = {"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced,
                         "kind": sub_kind["kind"], "verbs": kind.subresource_verbs(sub)}
            if sub_kind["group"] != kind.group:
                sub_entry["group"], sub_entry["version"] = sub_kind["group"], sub_kind["version"]
            resources.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


def api_group(group):
    version = GROUP_VERSIONS[group]
    entry = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [entry], "preferredVersion": entry}


def aggregated_discovery(groups, api_version):
    """The apidiscovery.k8s.io APIGroupDiscoveryList for /api (groups == [""]) or /apis."""
    items = []
    for group in groups:
        resources = []
        for kind in KINDS.values():
            if kind.group != group:
                continue
            entry = {
                "resource": kind.plural,
                "responseKind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
                "scope": "Namespaced" if kind.namespaced else "Cluster",
                "singularResource": kind.singular,
                "verbs": ALL_VERBS,
            }
            if kind.short_names:
                entry["shortNames"] = kind.short_names
            if kind.categories:
                entry["categories"] = kind.categories
            if kind.subresources:
                entry["subresources"] = [
                    {"subresource": sub, "responseKind": kind.subresource_kind(sub),
                     "verbs": kind.subresource_verbs(sub)}
                    for sub in kind.subresources
                ]
            resources.append(entry)
        metadata = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
        items.append({"metadata": metadata,
                      "versions": [{"version": GROUP_VERSIONS[group], "resources": resources, "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def openapi_v3_index():
    paths = {}
    for group, version in GROUP_VERSIONS.items():
        path = f"apis/{group}/{version}" if group else f"api/{version}"
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash=emulator-{SERVER_VERSION['gitVersion']}"}
    return {"paths": paths}


def openapi_v3_document(group):
    """Just enough OpenAPI v3 for kubectl: PATCH operations tagged with their kind and a
    fieldValidation query parameter. kubectl create/apply look for exactly that to decide the
    server validates fields itself; without it they insist on validating client-side against
    a full schema. No requestBody and no schemas, so kubectl apply computes its strategic
    merge patches from its compiled-in types, as it does for any built-in kind."""
    version = GROUP_VERSIONS[group]
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    parameters = [{"name": name, "in": "query", "schema": {"type": "string"}}
                  for name in ("dryRun", "fieldManager", "fieldValidation", "force")]
    paths = {}
    for kind in KINDS.values():
        if kind.group != group:
            continue
        base = f"{prefix}/namespaces/{{namespace}}/{kind.plural}" if kind.namespaced else f"{prefix}/{kind.plural}"
        for sub in [None] + [s for s in kind.subresources if s != "log"]:
            gvk = kind.subresource_kind(sub) if sub else {"group": kind.group, "version": kind.version,
                                                          "kind": kind.kind}
            paths[f"{base}/{{name}}" + (f"/{sub}" if sub else "")] = {"patch": {
                "operationId": f"patch{kind.kind}{sub or ''}",
                "parameters": parameters,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {}}


# --- the store, the controllers and the kubelet -------------------------------------------------------

Event = namedtuple("Event", "rv type plural namespace obj old")


class PodRuntime:
    """What the emulated kubelet knows about a pod beyond its JSON: when it started, restarts."""

    def __init__(self, created, ip):
        self.created = created  # time.monotonic() at creation
        self.ip = ip
        self.started_wall = None  # when its containers started running (RFC 3339)
        self.restarts = {}  # container name -> restart count
        self.next_restart = None
        self.last_crash_wall = None
        self.crash_logged = set()  # containers whose crash lines are in their log
        self.remove_at = None  # monotonic time a Terminating pod goes away


class Emulator:
    """All state, behind one lock; the condition wakes watches and log streams on changes."""

    def __init__(self, state_file=None):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.state_file = state_file
        # resourceVersions start from the clock, so a restarted emulator always answers with
        # newer ones and a client resuming from an old one gets 410, as after a real restart.
        self.rv = int(time.time() * 1000)
        self.compacted_rv = self.rv
        self.objects = {}  # (plural, namespace, name) -> object; stored objects are never mutated
        self.history = []  # Events, ascending rv
        self.history_rvs = []
        self.settings = dict(DEFAULT_SETTINGS)
        self.pod_runtime = {}  # (namespace, name) -> PodRuntime
        self.deploy_runtime = {}  # deployment uid -> {"progress": monotonic, "counts": tuple}
        self.logs = {}  # (namespace, pod, container) -> [(timestamp, monotonic, line)]
        self.image_rules = []
        self.fail_rules = []
        self.stream_epoch = 0  # bumped by drop-watches: every open stream ends
        self.abrupt_drop = False
        self.open_streams = {}
        self.stream_ids = 0
        self.requests = deque(maxlen=2000)
        self.next_ip = 10
        with self.lock:
            self._seed_namespaces()
            if state_file and os.path.exists(state_file):
                self._load(state_file)

    # -- low-level writes (lock held) --

    def _seed_namespaces(self):
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._insert(KINDS["namespaces"], self._new_namespace(name))

    def _new_namespace(self, name):
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339(),
                             "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _bump(self):
        self.rv += 1
        return self.rv

    def _record(self, event_type, kind, obj, old=None):
        event = Event(int(obj["metadata"]["resourceVersion"]), event_type, kind.plural,
                      obj["metadata"].get("namespace", ""), copy.deepcopy(obj), copy.deepcopy(old) if old else None)
        self.history.append(event)
        self.history_rvs.append(event.rv)
        excess = len(self.history) - int(self.settings["history_limit"])
        if excess > 0:
            self.compacted_rv = self.history[excess - 1].rv
            del self.history[:excess]
            del self.history_rvs[:excess]
        self.cond.notify_all()

    def _key(self, kind, obj):
        return kind.plural, obj["metadata"].get("namespace", "") if kind.namespaced else "", obj["metadata"]["name"]

    def _insert(self, kind, obj):
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self.objects[self._key(kind, obj)] = obj
        self._record("ADDED", kind, obj)
        return obj

    def _update(self, kind, new, old):
        """Stores new in place of old unless nothing changed; bumps generation on spec changes."""
        if without_rv(new) == without_rv(old):
            return old
        if kind.generation:
            generation = old["metadata"].get("generation", 1)
            new["metadata"]["generation"] = generation + 1 if new.get("spec") != old.get("spec") else generation
        new["metadata"]["resourceVersion"] = str(self._bump())
        self.objects[self._key(kind, new)] = new
        self._record("MODIFIED", kind, new, old)
        return new

    def _remove(self, kind, obj):
        key = self._key(kind, obj)
        if key not in self.objects:
            return
        del self.objects[key]
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = str(self._bump())
        self._record("DELETED", kind, final)
        if kind.plural == "pods":
            namespace, name = key[1], key[2]
            self.pod_runtime.pop((namespace, name), None)
            for log_key in [k for k in self.logs if k[0] == namespace and k[1] == name]:
                del self.logs[log_key]
        if kind.plural == "deployments":
            self.deploy_runtime.pop(obj["metadata"]["uid"], None)

    def _modify(self, kind, obj, change):
        """Applies change() to a copy of the stored version of obj and stores it."""
        current = self.objects.get(self._key(kind, obj))
        if current is None:
            return None
        new = copy.deepcopy(current)
        change(new)
        return self._update(kind, new, current)

    def _get(self, kind, namespace, name):
        return self.objects.get((kind.plural, namespace if kind.namespaced else "", name))

    def _list(self, kind, namespace=None):
        items = [obj for (plural, ns, _), obj in self.objects.items()
                 if plural == kind.plural and (namespace is None or ns == namespace)]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    # -- API operations (lock held by the caller through `with emulator.lock`) --

    def check_namespace(self, kind, namespace, creating):
        if not kind.namespaced:
            return
        ns = self._get(KINDS["namespaces"], "", namespace)
        if ns is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        if creating and deleting(ns):
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} because it is "
                                             f"being terminated",
                           {"name": namespace, "kind": "namespaces",
                            "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is "
                                                                                     f"currently being deleted",
                                        "field": "metadata.namespace"}]})

    def create(self, kind, namespace, obj, dry_run=False):
        if not isinstance(obj, dict):
            raise bad_request("the body must be a JSON object")
        decode_data_fields(kind, obj, lambda message: undecodable(kind, message))
        metadata = meta(obj)
        if kind.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if metadata.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + random_suffix()
        self.check_namespace(kind, namespace, creating=True)
        # Defaults come first, as on the real server, where decoding applies them.
        apply_defaults(kind, obj)
        self.validate(kind, obj, None)
        if self._get(kind, namespace, metadata["name"]) is not None:
            raise ApiError(409, "AlreadyExists", f'{kind.qualified} "{metadata["name"]}" already exists',
                           {"name": metadata["name"], "group": kind.group, "kind": kind.plural})
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_rfc3339()
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            metadata.pop(field, None)
        if kind.generation:
            metadata["generation"] = 1
        if kind.plural == "namespaces":
            obj["status"] = {"phase": "Active"}
            metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata["name"]
        elif kind.plural == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif kind.plural in WORKLOADS:
            obj["status"] = {"replicas": 0} if kind.plural != "deployments" else {}
        elif kind.plural == "cronjobs":
            obj["status"] = {}
        elif kind.plural == "ingresses":
            obj["status"] = {"loadBalancer": {}}
        if dry_run:
            return obj
        if kind.plural == "pods":
            self.pod_runtime[(namespace, metadata["name"])] = PodRuntime(time.monotonic(), self._next_ip())
        stored = self._insert(kind, obj)
        self.reconcile()
        return self._get(kind, namespace, metadata["name"]) or stored

    def replace(self, kind, namespace, name, obj, subresource=None, dry_run=False):
        """PUT: the whole object (status kept), or only its status with subresource "status"."""
        current = self._get(kind, namespace, name)
        if current is None:
            raise not_found(kind, name)
        if not isinstance(obj, dict):
            raise bad_request("the body must be a JSON object")
        if subresource != "status":
            decode_data_fields(kind, obj, lambda message: undecodable(kind, message))
        metadata = meta(obj)
        if metadata.get("name") and metadata["name"] != name:
            raise bad_request(f"the name of the object ({metadata['name']}) does not match the name on the URL "
                              f"({name})")
        if metadata.get("resourceVersion") and metadata["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise conflict(kind, name)
        if subresource == "status":
            new = copy.deepcopy(current)
            new["status"] = obj.get("status", {})
        else:
            new = copy.deepcopy(obj)
            new["apiVersion"], new["kind"] = kind.api_version, kind.kind
            new_meta = meta(new)
            for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                if field in current["metadata"]:
                    new_meta[field] = current["metadata"][field]
                else:
                    new_meta.pop(field, None)
            if kind.status_subresource and "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            apply_defaults(kind, new)
            self.validate(kind, new, current)
        if dry_run:
            return new
        stored = self._update(kind, new, current)
        if deleting(stored) and not stored["metadata"].get("finalizers") and kind.plural != "pods":
            self._remove(kind, stored)
        self.reconcile()
        return self._get(kind, namespace, name) or stored

    def patch(self, kind, namespace, name, content_type, body, subresource=None, dry_run=False):
        current = self._get(kind, namespace, name)
        if current is None:
            if (content_type or "").startswith("application/apply-patch"):
                # Server-side apply creates what is missing.
                return self.create(kind, namespace, apply_patch(content_type, {}, body), dry_run), True
            raise not_found(kind, name)
        patched = apply_patch(content_type, copy.deepcopy(current), body)
        if not isinstance(patched, dict):
            raise bad_request("the patch must leave an object")
        # The patched object is decoded as a body is, but a failure there is the patch's.
        decode_data_fields(kind, patched, lambda message: patch_invalid(body, message))
        rv = patched.get("metadata", {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise conflict(kind, name)
        patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        if subresource == "status":
            return self.replace(kind, namespace, name, {"metadata": {}, "status": patched.get("status", {})},
                                "status", dry_run), False
        # A patch never changes the status of a kind with a status subresource.
        return self.replace(kind, namespace, name, patched, None, dry_run), False

    def delete(self, kind, namespace, name, options, dry_run=False):
        current = self._get(kind, namespace, name)
        if current is None:
            raise not_found(kind, name)
        preconditions = (options or {}).get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind.qualified} "{name}": '
                                            f'Precondition failed: UID in precondition: {preconditions["uid"]}, '
                                            f'UID in object meta: {current["metadata"]["uid"]}')
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != \
                current["metadata"]["resourceVersion"]:
            raise conflict(kind, name)
        if dry_run:
            return current, False
        propagation = (options or {}).get("propagationPolicy")
        if propagation is None and (options or {}).get("orphanDependents"):
            propagation = "Orphan"
        if propagation == "Orphan":
            uid = current["metadata"]["uid"]
            for (plural, _, _), obj in list(self.objects.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in refs):
                    self._modify(KINDS[plural], obj, lambda o: orphan(o, uid))
        grace = (options or {}).get("gracePeriodSeconds")
        if kind.plural == "pods" and grace != 0:
            result = self._terminate_pod(current)
            return result, False
        if kind.plural == "namespaces" or current["metadata"].get("finalizers"):
            # Namespaces and objects with finalizers go through Terminating; the reconciler
            # removes them once empty / once the finalizers are gone.
            result = self._modify(kind, current, lambda o: o["metadata"].update(deletionTimestamp=now_rfc3339(),
                                                                                deletionGracePeriodSeconds=0))
            if kind.plural == "namespaces":
                result = self._modify(kind, result, lambda o: o.setdefault("status", {}).update(phase="Terminating"))
            self.reconcile()
            return result, False
        self._remove(kind, current)
        self.reconcile()
        return current, True

    def _terminate_pod(self, pod):
        runtime = self.pod_runtime.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if runtime is not None and runtime.remove_at is None:
            runtime.remove_at = time.monotonic() + float(self.settings["terminating_seconds"])
        if deleting(pod):
            return pod
        return self._modify(KINDS["pods"], pod, lambda o: o["metadata"].update(
            deletionTimestamp=now_rfc3339(),
            deletionGracePeriodSeconds=o.get("spec", {}).get("terminationGracePeriodSeconds", 30)))

    def validate(self, kind, obj, old):
        metadata, name = obj.get("metadata", {}), obj.get("metadata", {}).get("name", "")
        causes = []
        pattern = DNS_LABEL if kind.plural == "namespaces" else DNS_SUBDOMAIN
        if not name:
            causes.append(("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
        elif len(name) > (63 if kind.plural == "namespaces" else 253) or not pattern.match(name):
            causes.append(("metadata.name", "FieldValueInvalid",
                           f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                           f"alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                           f"character"))
        for key, value in (metadata.get("labels") or {}).items():
            if not isinstance(value, str):
                causes.append(("metadata.labels", "FieldValueTypeInvalid", f"label {key} must be a string"))
        spec = obj.get("spec") or {}
        if kind.plural in WORKLOADS:
            selector = spec.get("selector")
            template = spec.get("template") or {}
            if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
                causes.append(("spec.selector", "FieldValueRequired", "Required value"))
            elif not selector_matches(selector, (template.get("metadata") or {}).get("labels") or {}):
                causes.append(("spec.template.metadata.labels", "FieldValueInvalid",
                               f"Invalid value: {json.dumps((template.get('metadata') or {}).get('labels') or {})}: "
                               f"`selector` does not match template `labels`"))
            if old is not None and selector != (old.get("spec") or {}).get("selector"):
                causes.append(("spec.selector", "FieldValueInvalid",
                               f"Invalid value: {json.dumps(selector)}: field is immutable"))
            replicas = spec.get("replicas", 1)
            if not isinstance(replicas, int) or replicas < 0:
                causes.append(("spec.replicas", "FieldValueInvalid",
                               f"Invalid value: {replicas}: must be greater than or equal to 0"))
            causes += container_causes("spec.template.spec", template.get("spec") or {})
        if kind.plural == "pods":
            causes += container_causes("spec", spec)
        if kind.plural == "cronjobs":
            if len(name) > 52:
                # Job names get an 11-character suffix and must stay DNS-1035 labels.
                causes.append(("metadata.name", "FieldValueInvalid",
                               f'Invalid value: "{name}": must be no more than 52 characters'))
            causes += cronjob_causes(spec)
        if kind.plural in ("configmaps", "secrets"):
            causes += data_causes(kind, obj, old)
        if kind.plural == "ingresses":
            causes += ingress_causes(spec)
        if kind.plural == "networkpolicies":
            causes += network_policy_causes(spec)
        if causes:
            raise invalid(kind, name, causes)

    # -- the scale subresource --

    def scale_of(self, kind, obj):
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {key: obj["metadata"][key]
                         for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if key in obj["metadata"]},
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
            "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                       "selector": selector_string(obj.get("spec", {}).get("selector"))},
        }

    def set_scale(self, kind, namespace, name, scale, dry_run=False):
        current = self._get(kind, namespace, name)
        if current is None:
            raise not_found(kind, name)
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise conflict(kind, name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                           f"{replicas}: must be greater than or equal to 0",
                           {"name": name, "group": "autoscaling", "kind": "Scale"})
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = replicas
        if dry_run:
            return self.scale_of(kind, new)
        self._update(kind, new, current)
        self.reconcile()
        return self.scale_of(kind, self._get(kind, namespace, name))

    # -- the controllers --

    def reconcile(self):
        """Brings every object towards its desired state; cheap enough to run on each write."""
        now = time.monotonic()
        self._collect_garbage()
        for pod in self._list(KINDS["pods"]):
            self._sync_pod(pod, now)
        for rs in self._list(KINDS["replicasets"]):
            self._sync_replicaset(rs)
        for deployment in self._list(KINDS["deployments"]):
            self._sync_deployment(deployment, now)
        for sts in self._list(KINDS["statefulsets"]):
            self._sync_statefulset(sts)

    def _collect_garbage(self):
        uids = {obj["metadata"]["uid"] for obj in self.objects.values()}
        for (plural, namespace, name), obj in list(self.objects.items()):
            kind = KINDS[plural]
            refs = obj["metadata"].get("ownerReferences") or []
            if refs and not any(ref.get("uid") in uids for ref in refs) and not deleting(obj):
                if plural == "pods":
                    self._terminate_pod(obj)
                else:
                    self._remove(kind, obj)
            elif deleting(obj) and plural not in ("pods", "namespaces") and not obj["metadata"].get("finalizers"):
                self._remove(kind, obj)
        for ns in self._list(KINDS["namespaces"]):
            if not deleting(ns):
                continue
            name = ns["metadata"]["name"]
            contents = [(plural, obj) for (plural, namespace, _), obj in list(self.objects.items())
                        if namespace == name]
            for plural, obj in contents:
                if plural == "pods":
                    self._terminate_pod(obj)
                elif not deleting(obj):
                    self._remove(KINDS[plural], obj)
            if not contents:
                self._remove(KINDS["namespaces"], ns)

    def _next_ip(self):
        self.next_ip += 1
        return f"10.244.{self.next_ip // 250}.{self.next_ip % 250 + 2}"

    def _image_rule(self, image):
        for rule in self.image_rules:
            if rule["image_contains"] in (image or ""):
                return rule
        return None

    def _sync_pod(self, pod, now):
        """The kubelet: status from the pod's age, the image rules and the crash-loop clock."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        runtime = self.pod_runtime.get(key)
        if runtime is None:
            runtime = self.pod_runtime[key] = PodRuntime(now, self._next_ip())
        if runtime.remove_at is not None and now >= runtime.remove_at:
            self._remove(KINDS["pods"], pod)
            return
        if deleting(pod):
            if runtime.remove_at is None:
                runtime.remove_at = now + float(self.settings["terminating_seconds"])
            return
        containers = pod.get("spec", {}).get("containers") or []
        started = now >= runtime.created + float(self.settings["ready_delay_seconds"])
        statuses, any_running, all_ready = [], False, bool(containers)
        for container in containers:
            cname, image = container.get("name", ""), container.get("image", "")
            rule = self._image_rule(image)
            status = {"name": cname, "image": image, "imageID": "", "ready": False, "started": False,
                      "restartCount": runtime.restarts.get(cname, 0)}
            reason = rule["reason"] if rule else None
            if reason in ("ImagePullBackOff", "ErrImagePull"):
                status["state"] = {"waiting": {"reason": reason,
                                               "message": rule.get("message") or f'Back-off pulling image "{image}"'}}
            elif not started:
                status["state"] = {"waiting": {"reason": "ContainerCreating"}}
            else:
                status["imageID"] = f"{image.split('@')[0]}@sha256:{'0' * 64}"
                status["containerID"] = f"containerd://{uuid.uuid5(uuid.NAMESPACE_OID, key[0] + key[1] + cname).hex}"
                if runtime.started_wall is None:
                    runtime.started_wall = now_rfc3339()
                any_running = True
                if reason:
                    self._crash(runtime, key, cname, image, rule, now)
                    status["restartCount"] = runtime.restarts.get(cname, 0)
                    status["lastState"] = {"terminated": {
                        "exitCode": int(rule.get("exit_code", 1)), "reason": "OOMKilled" if reason == "OOMKilled" else
                        "Error", "startedAt": runtime.last_crash_wall, "finishedAt": runtime.last_crash_wall,
                        "containerID": status["containerID"]}}
                    status["state"] = {"waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 10s restarting failed container={cname} "
                                   f"pod={key[1]}_{key[0]}({pod['metadata']['uid']})"}}
                else:
                    status["ready"] = status["started"] = True
                    status["state"] = {"running": {"startedAt": runtime.started_wall}}
            all_ready = all_ready and status["ready"]
            statuses.append(status)
        old_status = pod.get("status", {})
        ready = "True" if all_ready else "False"
        not_ready = [s["name"] for s in statuses if not s["ready"]]
        conditions = [
            ("PodReadyToStartContainers", "True" if started else "False", None, None),
            ("Initialized", "True", None, None),
            ("Ready", ready, None if all_ready else "ContainersNotReady",
             None if all_ready else f"containers with unready status: [{' '.join(not_ready)}]"),
            ("ContainersReady", ready, None if all_ready else "ContainersNotReady",
             None if all_ready else f"containers with unready status: [{' '.join(not_ready)}]"),
            ("PodScheduled", "True", None, None),
        ]
        status = {
            "phase": "Running" if any_running else "Pending",
            "conditions": keep_transition_times(old_status.get("conditions"), conditions),
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "startTime": pod["metadata"].get("creationTimestamp"),
            "containerStatuses": statuses,
            "qosClass": old_status.get("qosClass", "BestEffort"),
        }
        if started:
            status["podIP"] = runtime.ip
            status["podIPs"] = [{"ip": runtime.ip}]
        if status != old_status:
            self._modify(KINDS["pods"], pod, lambda o: o.update(status=status))

    def _crash(self, runtime, key, cname, image, rule, now):
        """A crash-looping container restarts every crash_restart_seconds and logs its error."""
        interval = max(float(self.settings["crash_restart_seconds"]), 0.05)
        if runtime.restarts.get(cname, 0) == 0:
            runtime.restarts[cname] = 1
            runtime.last_crash_wall = now_rfc3339()
            runtime.next_restart = now + interval
        elif runtime.next_restart is not None and now >= runtime.next_restart:
            runtime.restarts[cname] += 1
            runtime.last_crash_wall = now_rfc3339()
            runtime.next_restart = now + interval
        if cname not in runtime.crash_logged:
            runtime.crash_logged.add(cname)
            lines = rule.get("log") or [f"starting {image}", "Error: fatal: cannot start: configuration invalid",
                                        f"exit status {int(rule.get('exit_code', 1))}"]
            self._append_log(key[0], key[1], cname, lines)

    def _append_log(self, namespace, pod, container, lines):
        entries = self.logs.setdefault((namespace, pod, container), [])
        for line in lines:
            entries.append((now_rfc3339_nano(), time.monotonic(), str(line)))
        self.cond.notify_all()

    def _create_pod(self, owner, owner_kind, name, template, extra_labels=None):
        template = template or {}
        metadata = {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "ownerReferences": [owner_reference(owner, owner_kind)],
        }
        if owner_kind.plural == "replicasets":
            metadata["generateName"] = owner["metadata"]["name"] + "-"
        metadata["labels"].update(extra_labels or {})
        if (template.get("metadata") or {}).get("annotations"):
            metadata["annotations"] = dict(template["metadata"]["annotations"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
               "spec": copy.deepcopy(template.get("spec") or {})}
        pod["spec"]["nodeName"] = NODE_NAME
        pod["metadata"]["uid"] = str(uuid.uuid4())
        pod["metadata"]["creationTimestamp"] = now_rfc3339()
        apply_defaults(KINDS["pods"], pod)
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort",
                         "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                         "lastTransitionTime": now_rfc3339()}]}
        self.pod_runtime[(metadata["namespace"], name)] = PodRuntime(time.monotonic(), self._next_ip())
        return self._insert(KINDS["pods"], pod)

    def _owned(self, kind, namespace, owner):
        uid = owner["metadata"]["uid"]
        return [obj for obj in self._list(kind, namespace) if controller_uid(obj) == uid]

    def _sync_replicaset(self, rs):
        rs = self._get(KINDS["replicasets"], rs["metadata"]["namespace"], rs["metadata"]["name"])
        if rs is None:
            return
        namespace = rs["metadata"]["namespace"]
        pods = self._owned(KINDS["pods"], namespace, rs)
        active = [p for p in pods if not deleting(p)]
        want = 0 if deleting(rs) else rs.get("spec", {}).get("replicas", 1)
        while len(active) < want:
            name = f"{rs['metadata']['name']}-{random_suffix()}"
            if self._get(KINDS["pods"], namespace, name) is None:
                active.append(self._create_pod(rs, KINDS["replicasets"], name, rs["spec"].get("template")))
        if len(active) > want:
            # The real controller deletes not-ready pods first, then the newest.
            def created(pod):
                runtime = self.pod_runtime.get((namespace, pod["metadata"]["name"]))
                return runtime.created if runtime else 0

            victims = sorted(active, key=lambda p: (pod_ready(p), -created(p)))
            for pod in victims[:len(active) - want]:
                self._terminate_pod(pod)
                active = [p for p in active if p["metadata"]["name"] != pod["metadata"]["name"]]
        active = [self._get(KINDS["pods"], namespace, p["metadata"]["name"]) for p in active]
        active = [p for p in active if p is not None]
        ready = sum(1 for p in active if pod_ready(p))
        status = {"replicas": len(active), "fullyLabeledReplicas": len(active), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if status != rs.get("status"):
            self._modify(KINDS["replicasets"], rs, lambda o: o.update(status=status))

    def _sync_deployment(self, deployment, now):
        kind, rs_kind = KINDS["deployments"], KINDS["replicasets"]
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        if deleting(deployment):
            return
        spec = deployment["spec"]
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        owned = self._owned(rs_kind, namespace, deployment)
        max_revision = max((rs_revision(rs) for rs in owned), default=0)
        template_hash_value = template_hash(template)
        new_rs = next((rs for rs in owned if rs["metadata"].get("labels", {}).get("pod-template-hash") ==
                       template_hash_value), None)
        if spec.get("paused"):
            new_rs = max(owned, key=rs_revision, default=None) if new_rs is None else new_rs
        if new_rs is None:
            new_rs = self._create_replicaset(deployment, template, template_hash_value, max_revision + 1,
                                             min(replicas, self._initial_new_replicas(deployment, owned)))
            owned.append(new_rs)
        elif rs_revision(new_rs) < max_revision and not spec.get("paused"):
            # A rollback to an older template: that ReplicaSet becomes the newest revision.
            new_rs = self._set_rs_annotation(new_rs, "deployment.kubernetes.io/revision", str(max_revision + 1))
        old = [rs for rs in owned if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        if not spec.get("paused"):
            self._roll(deployment, new_rs, old)
        else:
            self._scale_rs(new_rs, replicas)
        for rs in owned:
            self._sync_replicaset(rs)
        self._prune_history(deployment, new_rs, old)
        owned = self._owned(rs_kind, namespace, deployment)
        new_rs = next((rs for rs in owned if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)
        self._deployment_status(deployment, new_rs, owned, now)
        current = self._get(kind, namespace, name)
        rev = new_rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
        if current is not None and current["metadata"].get("annotations", {}).get(
                "deployment.kubernetes.io/revision") != rev:
            self._modify(kind, current, lambda o: o["metadata"].setdefault("annotations", {}).update(
                {"deployment.kubernetes.io/revision": rev}))

    def _initial_new_replicas(self, deployment, owned):
        """How many replicas a brand-new ReplicaSet starts with: all of them for the first
        rollout, else what the surge allows (the rolling update takes it from there)."""
        active = [rs for rs in owned if rs["spec"].get("replicas", 0) > 0]
        replicas = deployment["spec"].get("replicas", 1)
        if not active:
            return replicas
        if (deployment["spec"].get("strategy") or {}).get("type") == "Recreate":
            return 0
        surge, _ = self._surge_unavailable(deployment)
        total = sum(rs["spec"].get("replicas", 0) for rs in owned)
        return max(0, min(replicas, replicas + surge - total))

    def _surge_unavailable(self, deployment):
        replicas = deployment["spec"].get("replicas", 1)
        rolling = ((deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {})
        surge = int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def _create_replicaset(self, deployment, template, hash_value, revision, replicas):
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = hash_value
        selector = copy.deepcopy(deployment["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_value
        annotations = {k: v for k, v in (deployment["metadata"].get("annotations") or {}).items()
                       if not k.startswith("deployment.kubernetes.io/") and
                       k != "kubectl.kubernetes.io/last-applied-configuration"}
        surge, _ = self._surge_unavailable(deployment)
        annotations.update({"deployment.kubernetes.io/revision": str(revision),
                            "deployment.kubernetes.io/desired-replicas": str(deployment["spec"].get("replicas", 1)),
                            "deployment.kubernetes.io/max-replicas": str(deployment["spec"].get("replicas", 1) +
                                                                         surge)})
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{hash_value}", "namespace": namespace, "uid": str(uuid.uuid4()),
                         "creationTimestamp": now_rfc3339(), "generation": 1,
                         "labels": dict(rs_template["metadata"]["labels"]), "annotations": annotations,
                         "ownerReferences": [owner_reference(deployment, KINDS["deployments"])]},
            "spec": {"replicas": replicas, "selector": selector, "template": rs_template,
                     "minReadySeconds": deployment["spec"].get("minReadySeconds", 0)},
            "status": {"replicas": 0},
        }
        if rs["spec"]["minReadySeconds"] == 0:
            del rs["spec"]["minReadySeconds"]
        existing = self._get(KINDS["replicasets"], namespace, rs["metadata"]["name"])
        if existing is not None:
            # A ReplicaSet of that name but another owner: the real controller bumps the
            # collisionCount and hashes again; a random suffix is as good here.
            rs["metadata"]["name"] += random_suffix(2)
        return self._insert(KINDS["replicasets"], rs)

    def _set_rs_annotation(self, rs, key, value):
        return self._modify(KINDS["replicasets"], rs, lambda o: o["metadata"].setdefault("annotations", {})
                            .update({key: value})) or rs

    def _scale_rs(self, rs, replicas):
        if rs["spec"].get("replicas", 1) == replicas:
            return rs
        return self._modify(KINDS["replicasets"], rs, lambda o: o["spec"].update(replicas=replicas)) or rs

    def _roll(self, deployment, new_rs, old):
        """One step of the rollout, after the real controller's rolling update (or Recreate)."""
        replicas = deployment["spec"].get("replicas", 1)
        rs_kind = KINDS["replicasets"]

        def fresh(rs):
            return self._get(rs_kind, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs

        new_rs, old = fresh(new_rs), [fresh(rs) for rs in old]
        spec, available = rs_replicas, rs_available
        desired = str(replicas)
        surge, max_unavailable = self._surge_unavailable(deployment)
        for rs in [new_rs] + old:
            annotations = rs["metadata"].get("annotations", {})
            if annotations.get("deployment.kubernetes.io/desired-replicas") != desired:
                self._modify(rs_kind, rs, lambda o: o["metadata"].setdefault("annotations", {}).update({
                    "deployment.kubernetes.io/desired-replicas": desired,
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge)}))
        new_rs, old = fresh(new_rs), [fresh(rs) for rs in old]
        if (deployment["spec"].get("strategy") or {}).get("type") == "Recreate":
            for rs in old:
                self._scale_rs(rs, 0)
            old_pods = [p for rs in old for p in self._owned(KINDS["pods"], rs["metadata"]["namespace"], rs)]
            self._scale_rs(new_rs, replicas if not old_pods else 0)
            return
        if spec(new_rs) > replicas:
            new_rs = self._scale_rs(new_rs, replicas)
        if not any(spec(rs) for rs in old):
            # Nothing left to replace: a plain scale.
            self._scale_rs(new_rs, replicas)
            return
        # Scale up the new ReplicaSet within maxSurge.
        total = spec(new_rs) + sum(spec(rs) for rs in old)
        if total < replicas + surge and spec(new_rs) < replicas:
            new_rs = self._scale_rs(new_rs, spec(new_rs) + min(replicas + surge - total, replicas - spec(new_rs)))
        # Scale down old ReplicaSets within maxUnavailable: unhealthy pods first, then by
        # availability (reconcileOldReplicaSets, cleanupUnhealthyReplicas).
        total = spec(new_rs) + sum(spec(rs) for rs in old)
        min_available = replicas - max_unavailable
        budget = total - min_available - (spec(new_rs) - available(new_rs))
        if budget <= 0:
            return
        old = sorted(old, key=lambda rs: rs["metadata"]["creationTimestamp"])
        for i, rs in enumerate(old):
            unhealthy = spec(rs) - available(rs)
            if unhealthy > 0 and budget > 0:
                step = min(unhealthy, budget)
                old[i] = self._scale_rs(rs, spec(rs) - step)
                budget -= step
        all_available = available(new_rs) + sum(available(rs) for rs in old)
        can_remove = all_available - min_available
        for rs in old:
            if can_remove <= 0:
                break
            step = min(spec(rs), can_remove)
            if step > 0:
                self._scale_rs(rs, spec(rs) - step)
                can_remove -= step

    def _prune_history(self, deployment, new_rs, old):
        limit = deployment["spec"].get("revisionHistoryLimit", 10)
        idle = [rs for rs in old if rs["spec"].get("replicas", 0) == 0 and rs.get("status", {}).get("replicas", 0) == 0]
        idle.sort(key=rs_revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            self._remove(KINDS["replicasets"], rs)

    def _deployment_status(self, deployment, new_rs, owned, now):
        current = self._get(KINDS["deployments"], deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        if current is None:
            return
        spec = current["spec"]
        replicas = spec.get("replicas", 1)

        def stat(rs, field):
            return rs.get("status", {}).get(field, 0)

        total = sum(stat(rs, "replicas") for rs in owned)
        updated = stat(new_rs, "replicas")
        ready = sum(stat(rs, "readyReplicas") for rs in owned)
        available = sum(stat(rs, "availableReplicas") for rs in owned)
        _, max_unavailable = self._surge_unavailable(current)
        runtime = self.deploy_runtime.setdefault(current["metadata"]["uid"], {"progress": now, "counts": None})
        counts = (new_rs["metadata"]["name"], total, updated, ready, available, replicas)
        if counts != runtime["counts"]:
            runtime["counts"], runtime["progress"] = counts, now
        complete = updated == replicas and total == replicas and available == replicas
        rs_name = new_rs["metadata"]["name"]
        if complete:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif now - runtime["progress"] > spec.get("progressDeadlineSeconds", 600):
            progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        if available >= replicas - max_unavailable:
            availability = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            availability = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        old_status = current.get("status", {})
        conditions = keep_transition_times(old_status.get("conditions"), [
            ("Available",) + availability, ("Progressing",) + progressing], update_times=True)
        status = {"observedGeneration": current["metadata"].get("generation", 1), "replicas": total,
                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available,
                  "unavailableReplicas": max(replicas - available, 0), "conditions": conditions}
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        if status != old_status:
            self._modify(KINDS["deployments"], current, lambda o: o.update(status=status))

    def _sync_statefulset(self, sts):
        kind, pod_kind = KINDS["statefulsets"], KINDS["pods"]
        namespace, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        if deleting(sts):
            return
        spec = sts["spec"]
        replicas = spec.get("replicas", 1)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods = {}
        for pod in self._owned(pod_kind, namespace, sts):
            suffix = pod["metadata"]["name"][len(name) + 1:]
            if suffix.isdigit():
                pods[int(suffix)] = pod

        def healthy(i):
            return i in pods and pod_ready(pods[i]) and not deleting(pods[i])

        # Scale up in ordinal order (OrderedReady waits for each pod to be ready).
        for i in range(replicas):
            if i in pods:
                continue
            if not parallel and not all(healthy(j) for j in range(i)):
                break
            labels = {"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                      "apps.kubernetes.io/pod-index": str(i)}
            pods[i] = self._create_pod(sts, kind, f"{name}-{i}", spec.get("template"), labels)
            if not parallel:
                break
        # Scale down from the highest ordinal.
        surplus = sorted((i for i in pods if i >= replicas), reverse=True)
        for i in (surplus if parallel else surplus[:1]):
            if not deleting(pods[i]) and (parallel or all(healthy(j) for j in range(replicas))):
                pods[i] = self._terminate_pod(pods[i])
        # Roll template changes, highest ordinal first, one pod at a time.
        partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0)
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" and \
                all(healthy(i) for i in range(replicas)) and not surplus:
            outdated = [i for i in range(replicas - 1, partition - 1, -1)
                        if pods[i]["metadata"].get("labels", {}).get("controller-revision-hash") != revision]
            if outdated:
                self._terminate_pod(pods[outdated[0]])
        active = [self._get(pod_kind, namespace, p["metadata"]["name"]) for p in pods.values()]
        active = [p for p in active if p is not None and not deleting(p)]
        current = self._get(kind, namespace, name)
        if current is None:
            return
        old_status = current.get("status", {})
        updated = sum(1 for p in active if p["metadata"].get("labels", {}).get("controller-revision-hash") == revision)
        current_revision = old_status.get("currentRevision") or revision
        if updated == len(active) == replicas:
            current_revision = revision
        ready = sum(1 for p in active if pod_ready(p))
        status = {"observedGeneration": current["metadata"].get("generation", 1), "replicas": len(active),
                  "readyReplicas": ready, "currentReplicas": sum(
                      1 for p in active if p["metadata"].get("labels", {}).get("controller-revision-hash") ==
                      current_revision), "updatedReplicas": updated, "availableReplicas": ready,
                  "currentRevision": current_revision, "updateRevision": revision, "collisionCount": 0}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration", "collisionCount")}
        if status != old_status:
            self._modify(kind, current, lambda o: o.update(status=status))

    # -- hooks --

    def reset(self):
        self.objects.clear()
        self.history.clear()
        self.history_rvs.clear()
        self.compacted_rv = self.rv
        self.settings = dict(DEFAULT_SETTINGS)
        self.pod_runtime.clear()
        self.deploy_runtime.clear()
        self.logs.clear()
        self.image_rules.clear()
        self.fail_rules.clear()
        self.requests.clear()
        self._seed_namespaces()
        self.drop_streams(abrupt=False)

    def drop_streams(self, abrupt):
        self.stream_epoch += 1
        self.abrupt_drop = abrupt
        self.cond.notify_all()

    def compact(self):
        self.history.clear()
        self.history_rvs.clear()
        self.compacted_rv = self.rv
        self.cond.notify_all()

    def events_after(self, rv):
        return self.history[bisect.bisect_right(self.history_rvs, rv):]

    def save(self):
        if not self.state_file:
            raise bad_request("the emulator was started without --state-file")
        state = {
            "rv": self.rv,
            "objects": [[plural, obj] for (plural, _, _), obj in self.objects.items()],
            "settings": self.settings,
            "logs": [[list(key), [[stamp, line] for stamp, _, line in entries]] for key, entries in self.logs.items()],
            "image_rules": self.image_rules,
            "fail_rules": self.fail_rules,
            "restarts": [[list(key), runtime.restarts] for key, runtime in self.pod_runtime.items()],
        }
        temporary = self.state_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(state, out)
        os.replace(temporary, self.state_file)
        return len(self.objects)

    def _load(self, path):
        with open(path, encoding="utf-8") as source:
            state = json.load(source)
        self.objects.clear()
        # Newer than anything the previous process handed out, and nothing older can be
        # resumed: the watch cache of a restarted apiserver starts empty too.
        self.rv = max(self.rv, int(state["rv"]) + 1)
        self.compacted_rv = self.rv
        long_ago = time.monotonic() - 3600
        restarts = {tuple(key): value for key, value in state.get("restarts", [])}
        for plural, obj in state["objects"]:
            kind = KINDS[plural]
            self.objects[self._key(kind, obj)] = obj
            if plural == "pods":
                key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
                runtime = PodRuntime(long_ago, (obj.get("status") or {}).get("podIP") or self._next_ip())
                runtime.started_wall = (((obj.get("status") or {}).get("containerStatuses") or [{}])[0]
                                        .get("state", {}).get("running", {}).get("startedAt"))
                runtime.restarts = restarts.get(key, {})
                runtime.crash_logged = set(runtime.restarts)
                self.pod_runtime[key] = runtime
        self.settings.update(state.get("settings", {}))
        self.image_rules = state.get("image_rules", [])
        self.fail_rules = state.get("fail_rules", [])
        for key, entries in state.get("logs", []):
            self.logs[tuple(key)] = [(stamp, time.monotonic(), line) for stamp, line in entries]


def keep_transition_times(old_conditions, wanted, update_times=False):
    """Conditions from (type, status, reason, message) tuples, keeping lastTransitionTime (and,
    for update_times kinds, lastUpdateTime) while a condition does not change, so that an
    unchanged object compares equal and produces no event."""
    old = {c.get("type"): c for c in old_conditions or []}
    now = now_rfc3339()
    result = []
    for ctype, status, reason, message in wanted:
        previous = old.get(ctype, {})
        same = previous.get("status") == status
        unchanged = same and previous.get("reason") == reason and previous.get("message") == message
        condition = {"type": ctype, "status": status}
        if update_times:
            condition["lastUpdateTime"] = previous.get("lastUpdateTime", now) if unchanged else now
        else:
            condition["lastProbeTime"] = None
        condition["lastTransitionTime"] = previous.get("lastTransitionTime", now) if same else now
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        result.append(condition)
    return result


def not_supported(path, value, supported):
    """field.NotSupported's cause."""
    return (path, "FieldValueNotSupported", f"Unsupported value: {json.dumps(value)}: supported values: "
                                            f"{', '.join(json.dumps(v) for v in supported)}")


def data_causes(kind, obj, old):
    """ConfigMap and Secret validation: config keys, and what immutable objects forbid."""
    causes = []
    fields = ("data",) if kind.plural == "secrets" else ("data", "binaryData")
    for field in fields:
        for key in obj.get(field) or {}:
            messages = []
            if len(key) > 253:
                messages.append("must be no more than 253 characters")
            if not CONFIG_KEY.match(key):
                messages.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                                "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                                "'[-._a-zA-Z0-9]+')")
            if key in (".", ".."):
                messages.append(f"must not be '{key}'")
            elif key.startswith(".."):
                messages.append("must not start with '..'")
            if field == "binaryData" and key in (obj.get("data") or {}):
                messages.append("duplicate of key present in data")
            causes += [(f"{field}[{key}]", "FieldValueInvalid", f"Invalid value: {json.dumps(key)}: {message}")
                       for message in messages]
    if old is None:
        return causes
    if kind.plural == "secrets" and obj.get("type") != old.get("type"):
        causes.append(("type", "FieldValueInvalid",
                       f"Invalid value: {json.dumps(obj.get('type'))}: field is immutable"))
    if old.get("immutable"):
        forbidden = "Forbidden: field is immutable when `immutable` is set"
        if not obj.get("immutable"):
            causes.append(("immutable", "FieldValueForbidden", forbidden))
        for field in fields:
            if (obj.get(field) or {}) != (old.get(field) or {}):
                causes.append((field, "FieldValueForbidden", forbidden))
    return causes


CRON_BOUNDS = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
    ("day of week", 0, 6, {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
]
CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def cron_schedule_error(schedule):
    """The error robfig/cron's ParseStandard (what the real server validates schedules with)
    gives for a schedule, or None: five fields of numbers, names, ranges, steps, lists and
    */?, or a descriptor such as @hourly or "@every 1h"."""
    if not schedule:
        return "empty spec string"
    if schedule.startswith("@"):
        if schedule in CRON_DESCRIPTORS:
            return None
        if schedule.startswith("@every "):
            duration = schedule[len("@every "):]
            if re.fullmatch(r"(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+", duration):
                return None
            return f'failed to parse duration {schedule}: time: invalid duration "{duration}"'
        return f"unrecognized descriptor: {schedule}"
    fields = schedule.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"

    def number(text, names):
        if text.lower() in names:
            return names[text.lower()], None
        if not re.fullmatch(r"[+-]?\d+", text):
            return None, f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        if int(text) < 0:
            return None, f"negative number ({int(text)}) not allowed: {text}"
        return int(text), None

    for field, (_, low, high, names) in zip(fields, CRON_BOUNDS):
        for expr in field.split(","):
            range_and_step = expr.split("/")
            low_high = range_and_step[0].split("-")
            if low_high[0] in ("*", "?"):
                start, end = low, high
            else:
                start, error = number(low_high[0], names)
                if error:
                    return error
                if len(low_high) == 1:
                    end = start
                elif len(low_high) == 2:
                    end, error = number(low_high[1], names)
                    if error:
                        return error
                else:
                    return f"too many hyphens: {expr}"
            step = 1
            if len(range_and_step) == 2:
                step, error = number(range_and_step[1], {})
                if error:
                    return error
                if len(low_high) == 1:
                    end = high  # "N/step" means "N-max/step"
            elif len(range_and_step) > 2:
                return f"too many slashes: {expr}"
            if start < low:
                return f"beginning of range ({start}) below minimum ({low}): {expr}"
            if end > high:
                return f"end of range ({end}) above maximum ({high}): {expr}"
            if start > end:
                return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
            if step == 0:
                return f"step of range should be a positive number: {expr}"
    return None


@functools.lru_cache(maxsize=1)
def have_time_zones():
    return bool(zoneinfo.available_timezones())


def time_zone_known(name):
    """Whether the tz database knows the zone (any name passes on a machine without one)."""
    if not have_time_zones():
        return True
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False


def cronjob_causes(spec):
    """CronJob validation: the schedule (and its time zone), the policies and the job
    template's pods."""
    causes = []
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(("spec.schedule", "FieldValueRequired", "Required value"))
    else:
        error = cron_schedule_error(schedule) if isinstance(schedule, str) else "expected a string"
        if error:
            causes.append(("spec.schedule", "FieldValueInvalid", f"Invalid value: {json.dumps(schedule)}: {error}"))
        if "TZ" in str(schedule):
            causes.append(("spec.schedule", "FieldValueInvalid",
                           f"Invalid value: {json.dumps(schedule)}: cannot use TZ or CRON_TZ in schedule, use "
                           f"timeZone field instead"))
    zone = spec.get("timeZone")
    if zone is not None:
        if zone == "":
            causes.append(("spec.timeZone", "FieldValueInvalid",
                           'Invalid value: "": timeZone must be nil or non-empty string'))
        elif not re.fullmatch(r"[A-Za-z.\-_0-9+]{1,14}(/[A-Za-z.\-_0-9+]{1,14})*", zone) or \
                not time_zone_known(zone):
            causes.append(("spec.timeZone", "FieldValueInvalid",
                           f"Invalid value: {json.dumps(zone)}: unknown time zone {zone}"))
    if spec.get("concurrencyPolicy") not in ("Allow", "Forbid", "Replace"):
        causes.append(not_supported("spec.concurrencyPolicy", spec.get("concurrencyPolicy"),
                                    ["Allow", "Forbid", "Replace"]))
    for field in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append((f"spec.{field}", "FieldValueInvalid",
                           f"Invalid value: {json.dumps(value)}: must be greater than or equal to 0"))
    pod_spec = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    path = "spec.jobTemplate.spec.template.spec"
    causes += container_causes(path, pod_spec)
    restart = pod_spec.get("restartPolicy") or "Always"
    if restart not in ("OnFailure", "Never"):
        causes.append(not_supported(f"{path}.restartPolicy", restart, ["OnFailure", "Never"]))
    return causes


def ingress_causes(spec):
    """Ingress validation: a backend or rules, host names, and each path's type."""
    causes = []
    if not spec.get("rules") and not spec.get("defaultBackend"):
        causes.append(("spec", "FieldValueInvalid", "Invalid value: []networking.IngressRule(nil): either "
                                                    "`defaultBackend` or `rules` must be specified"))
    for i, rule in enumerate(spec.get("rules") or []):
        rule = rule if isinstance(rule, dict) else {}
        host = rule.get("host")
        if host:
            bare = host[2:] if host.startswith("*.") else host
            if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", host):
                causes.append((f"spec.rules[{i}].host", "FieldValueInvalid",
                               f"Invalid value: {json.dumps(host)}: must be a DNS name, not an IP address"))
            elif not DNS_SUBDOMAIN.match(bare) or len(bare) > 253:
                causes.append((f"spec.rules[{i}].host", "FieldValueInvalid",
                               f"Invalid value: {json.dumps(host)}: a lowercase RFC 1123 subdomain must consist of "
                               f"lower case alphanumeric characters, '-' or '.', and must start and end with an "
                               f"alphanumeric character"))
        for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
            where = f"spec.rules[{i}].http.paths[{j}]"
            path = path if isinstance(path, dict) else {}
            path_type = path.get("pathType")
            if path_type is None:
                causes.append((f"{where}.pathType", "FieldValueRequired", "Required value: pathType must be specified"))
            elif path_type not in ("Exact", "ImplementationSpecific", "Prefix"):
                causes.append(not_supported(f"{where}.pathType", path_type, ["Exact", "ImplementationSpecific",
                                                                              "Prefix"]))
            elif path_type != "ImplementationSpecific" and not str(path.get("path") or "").startswith("/"):
                causes.append((f"{where}.path", "FieldValueInvalid",
                               f"Invalid value: {json.dumps(path.get('path') or '')}: must be an absolute path"))
    return causes


def network_policy_causes(spec):
    """NetworkPolicy validation: the policy types."""
    types = spec.get("policyTypes") or []
    if len(types) > 2:
        return [("spec.policyTypes", "FieldValueInvalid",
                 f"Invalid value: {json.dumps(types)}: may not specify more than two policyTypes")]
    return [not_supported(f"spec.policyTypes[{i}]", value, ["Ingress", "Egress"])
            for i, value in enumerate(types) if value not in ("Ingress", "Egress")]


def container_causes(path, pod_spec):
    causes = []
    containers = pod_spec.get("containers")
    if not containers:
        return [(f"{path}.containers", "FieldValueRequired", "Required value")]
    for i, container in enumerate(containers):
        if not container.get("name"):
            causes.append((f"{path}.containers[{i}].name", "FieldValueRequired", "Required value"))
        if not container.get("image"):
            causes.append((f"{path}.containers[{i}].image", "FieldValueRequired", "Required value"))
    return causes


def apply_defaults(kind, obj):
    """The defaults the real API server fills in, so objects read back as they would there."""
    if kind.plural in SPECLESS:
        # No spec and no status in these types: the real server drops such fields.
        obj.pop("spec", None)
        obj.pop("status", None)
        if kind.plural == "secrets" and not obj.get("type"):
            obj["type"] = "Opaque"
        return
    spec = obj.setdefault("spec", {})
    if kind.plural == "namespaces":
        spec.setdefault("finalizers", ["kubernetes"])
    if kind.plural == "pods":
        default_pod_spec(spec)
    if kind.plural in WORKLOADS:
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        default_pod_spec(template.setdefault("spec", {}))
    if kind.plural == "deployments":
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy["type"] = "RollingUpdate"
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("progressDeadlineSeconds", 600)
    if kind.plural == "replicasets":
        spec.pop("revisionHistoryLimit", None)
    if kind.plural == "statefulsets":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("serviceName", "")
    if kind.plural == "cronjobs":
        spec.setdefault("concurrencyPolicy", "Allow")
        if spec.get("suspend") is None:
            spec["suspend"] = False
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
        template = job_spec.setdefault("template", {})
        template.setdefault("metadata", {})
        # The pod defaults apply to the job template too: a missing restartPolicy becomes
        # "Always", which validation then refuses for a job, as on the real server.
        default_pod_spec(template.setdefault("spec", {}))
    if kind.plural == "networkpolicies":
        obj.pop("status", None)  # NetworkPolicy has had no status since 1.28
        if spec.get("podSelector") is None:
            spec["podSelector"] = {}
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                ports = rule.get("ports") if isinstance(rule, dict) else None
                for port in ports or []:
                    if isinstance(port, dict):
                        port.setdefault("protocol", "TCP")


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = container.get("image") or ""
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag.split("@")[0] or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


# --- HTTP --------------------------------------------------------------------------------------------------

EMULATOR = None  # the Emulator, set by main()


class StreamEnded(Exception):
    """The client went away or the stream was dropped; just stop."""


class Handler(BaseHTTPRequestHandler):
    # Keep-alive as the real server does; every response has a Content-Length or is chunked.
    protocol_version = "HTTP/1.1"
    server_version = "k8s-emulator"

    def setup(self):
        super().setup()
        # Small writes (a watch event, a log line) go out at once instead of waiting for
        # the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_HEAD(self):
        self.dispatch("HEAD")

    # -- plumbing --

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, code, body, content_type="application/json", extra_headers=()):
        self.status_code = code
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, code, obj, content_type="application/json"):
        self.send_bytes(code, json.dumps(obj, separators=(",", ":")).encode(), content_type)

    def start_chunked(self, content_type):
        self.status_code = 200
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data):
        if not data:
            return
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise StreamEnded() from None

    def end_chunked(self, abrupt=False):
        if abrupt:
            # Cut the connection mid-stream, as a crashed server or a dropped proxy would.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def client_gone(self):
        """Whether the client closed its side (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def accept_parts(self):
        """The media ranges of Accept, in order, each as (type, {param: value})."""
        parts = []
        for media_range in (self.headers.get("Accept") or "").split(","):
            pieces = [p.strip() for p in media_range.split(";")]
            params = {}
            for piece in pieces[1:]:
                if "=" in piece:
                    key, value = piece.split("=", 1)
                    params[key.strip()] = value.strip()
            parts.append((pieces[0].lower(), params))
        return parts

    def output_form(self):
        """("table", version) / ("metadata", None) / ("json", None) from Accept, first match wins."""
        for media, params in self.accept_parts():
            if params.get("g") == "meta.k8s.io" and params.get("as") == "Table" and \
                    params.get("v") in ("v1", "v1beta1"):
                return "table", params["v"]
            if params.get("g") == "meta.k8s.io" and params.get("as", "").startswith("PartialObjectMetadata"):
                return "metadata", params.get("v", "v1")
            if media in ("application/json", "*/*", "application/*") and "as" not in params:
                return "json", None
        return "json", None

    def dispatch(self, method):
        self.status_code = 0
        started = time.monotonic()
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self.read_body()
            self.route(method, url.path, query, body)
        except ApiError as err:
            self.send_json(err.code, err.status())
        except StreamEnded:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - answered as the real server's 500
            traceback.print_exc()
            try:
                self.send_json(500, status_object(500, "InternalError", f"Internal error occurred: {err}"))
            except OSError:
                self.close_connection = True
        finally:
            # Not the harness polling the hooks: the log is for what clients sent the API.
            if not (method == "GET" and url.path.startswith("/emulator/")):
                self.record(method, url, started)

    def record(self, method, url, started):
        with EMULATOR.lock:
            EMULATOR.requests.append({
                "method": method, "path": url.path, "query": url.query, "status": self.status_code,
                "contentType": self.headers.get("Content-Type"), "accept": self.headers.get("Accept"),
                "userAgent": self.headers.get("User-Agent"), "seconds": round(time.monotonic() - started, 3),
            })

    # -- routing --

    def route(self, method, path, query, body):
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["emulator"]:
            return self.hook(method, parts[1:], body)
        discovery_path = parts in (["version"], ["api"], ["apis"], ["healthz"], ["readyz"], ["livez"]) or \
            parts[:1] == ["openapi"]
        if discovery_path and method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if parts == ["version"]:
            return self.send_json(200, SERVER_VERSION)
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        if parts == ["openapi", "v3"]:
            return self.send_json(200, openapi_v3_index())
        if parts[:2] == ["openapi", "v3"] and "/".join(parts[2:]) in openapi_v3_index()["paths"]:
            group = "" if parts[2] == "api" else parts[3]
            return self.send_json(200, openapi_v3_document(group))
        if parts[:1] == ["openapi"]:
            # No OpenAPI v2 at all: kubectl only wants it when v3 is missing.
            raise PAGE_NOT_FOUND
        if parts == ["api"]:
            return self.discovery([""], {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.headers.get("Host", "127.0.0.1")}]})
        if parts == ["apis"]:
            groups = [g for g in GROUP_VERSIONS if g]
            return self.discovery(groups, {"kind": "APIGroupList", "apiVersion": "v1",
                                           "groups": [api_group(g) for g in groups]})
        if parts[:2] == ["api", "v1"]:
            return self.resource(method, "", parts[2:], query, body)
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in GROUP_VERSIONS and parts[1]:
            return self.send_json(200, dict(api_group(parts[1]), kind="APIGroup", apiVersion="v1"))
        if len(parts) >= 3 and parts[0] == "apis" and parts[1] and GROUP_VERSIONS.get(parts[1]) == parts[2]:
            return self.resource(method, parts[1], parts[3:], query, body)
        raise PAGE_NOT_FOUND

    def discovery(self, groups, legacy):
        for media, params in self.accept_parts():
            if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList" and \
                    params.get("v") in ("v2", "v2beta1"):
                version = params["v"]
                content_type = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                return self.send_json(200, aggregated_discovery(groups, f"apidiscovery.k8s.io/{version}"),
                                      content_type)
            if media in ("application/json", "*/*") and "as" not in params:
                break
        # The legacy form, with plain application/json: client-go falls back on that type.
        return self.send_json(200, legacy)

    def resource(self, method, group, rest, query, body):
        if not rest:
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                        "resource")
            return self.send_json(200, legacy_resource_list(group))
        if rest[0] == "watch":
            # The deprecated /watch/ path form.
            query = dict(query, watch="true")
            rest = rest[1:]
        namespace = None
        # namespaces/NS/KIND[/...] is a namespaced resource; namespaces/NS[/status] is the
        # Namespace itself.
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in KINDS and KINDS[rest[2]].namespaced:
            namespace, rest = rest[1], rest[2:]
        kind = KINDS.get(rest[0])
        if kind is None or kind.group != group:
            raise PAGE_NOT_FOUND
        if namespace is not None and not kind.namespaced:
            raise PAGE_NOT_FOUND
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (subresource and subresource not in kind.subresources):
            raise PAGE_NOT_FOUND
        if kind.plural == "namespaces" and name:
            namespace = None
        verb = self.verb(method, name, query)
        self.check_rules(verb, kind, subresource, namespace, name)
        dry_run = query.get("dryRun") == "All"
        if name is None:
            return self.collection(method, kind, namespace, query, body, dry_run)
        if kind.namespaced and namespace is None:
            raise PAGE_NOT_FOUND
        if subresource == "log":
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                        "resource")
            return self.pod_log(namespace, name, query)
        if subresource == "scale":
            return self.scale(method, kind, namespace, name, body, dry_run)
        return self.item(method, kind, namespace or "", name, subresource, body, dry_run)

    def verb(self, method, name, query):
        if method in ("GET", "HEAD"):
            if name is None:
                return "watch" if query.get("watch") in ("true", "1") else "list"
            return "get"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())

    def check_rules(self, verb, kind, subresource, namespace, name):
        """The forbid hook's rules: answer with the configured error instead."""
        resource = f"{kind.plural}/{subresource}" if subresource else kind.plural
        with EMULATOR.lock:
            for rule in EMULATOR.fail_rules:
                if rule.get("verb", "*") not in ("*", verb) or rule.get("resource", "*") not in ("*", resource):
                    continue
                if rule.get("namespace") not in (None, "*", namespace) or rule.get("name") not in (None, "*", name):
                    continue
                if rule.get("times") is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                code = int(rule.get("code", 403))
                break
            else:
                return
        user = rule.get("user", DEFAULT_USER)
        if code != 403:
            reasons = {401: "Unauthorized", 404: "NotFound", 409: "Conflict", 429: "TooManyRequests",
                       500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
            raise ApiError(code, reasons.get(code, ""), rule.get("message") or f"injected error {code}")
        subject = f'{kind.qualified} "{name}"' if name else kind.qualified
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                                         f'in API group "{kind.group}" {scope}',
                       {"name": name, "group": kind.group, "kind": kind.plural} if name else
                       {"group": kind.group, "kind": kind.plural})

    def parse_json_body(self, body):
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if content_type == "application/vnd.kubernetes.protobuf":
            return decode_protobuf_object(body)
        if content_type not in ("application/json", "application/yaml", "*/*", ""):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                                                        "media types include: application/json, application/yaml")
        try:
            return json.loads(body or b"null")
        except ValueError as err:
            raise bad_request(f"the object provided is unrecognized or could not be decoded: {err}") from None

    def render(self, kind, obj):
        form, version = self.output_form()
        if form == "table":
            return table(kind, [obj], obj["metadata"]["resourceVersion"], version, "Metadata")
        if form == "metadata":
            return partial_metadata(obj)
        return with_type(kind, obj)

    def collection(self, method, kind, namespace, query, body, dry_run):
        if method in ("GET", "HEAD"):
            if query.get("watch") in ("true", "1"):
                return self.watch(kind, namespace, query)
            return self.list(kind, namespace, query)
        if method == "POST":
            obj = self.parse_json_body(body)
            with EMULATOR.lock:
                created = EMULATOR.create(kind, namespace or "", obj, dry_run)
                return self.send_json(201, self.render(kind, created))
        if method == "DELETE":
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
            options = self.parse_json_body(body) if body else {}
            with EMULATOR.lock:
                deleted = []
                for obj in EMULATOR._list(kind, namespace):
                    if all(p(obj["metadata"].get("labels") or {}) for p in labels) and all(f(obj) for f in fields):
                        deleted.append(EMULATOR.delete(kind, namespace or "", obj["metadata"]["name"], options,
                                                       dry_run)[0])
                rv = EMULATOR.rv
            return self.send_json(200, {"kind": kind.list_kind, "apiVersion": kind.api_version,
                                        "metadata": {"resourceVersion": str(rv)},
                                        "items": [with_type(kind, o) for o in deleted]})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def selected(self, kind, namespace, query):
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        return lambda obj: (
            obj is not None
            and (namespace is None or not kind.namespaced or obj["metadata"].get("namespace") == namespace)
            and all(p(obj["metadata"].get("labels") or {}) for p in labels)
            and all(f(obj) for f in fields)
        )

    def wait_for_rv(self, query):
        """A resourceVersion newer than the store's: the real server waits up to 3 s for it,
        then answers 504 "Too large resource version"."""
        wanted = query.get("resourceVersion")
        if not wanted or wanted == "0":
            return None
        try:
            wanted = int(wanted)
        except ValueError:
            raise bad_request(f'invalid resource version "{wanted}"') from None
        deadline = time.monotonic() + 3
        with EMULATOR.cond:
            while EMULATOR.rv < wanted and time.monotonic() < deadline:
                EMULATOR.cond.wait(deadline - time.monotonic())
            if EMULATOR.rv < wanted:
                return ApiError(504, "Timeout", f"Timeout: Too large resource version: {wanted}, current: "
                                                f"{EMULATOR.rv}",
                                {"causes": [{"reason": "ResourceVersionTooLarge",
                                             "message": "Too large resource version"}], "retryAfterSeconds": 1})
        return None

    def list(self, kind, namespace, query):
        matches = self.selected(kind, namespace, query)
        too_large = self.wait_for_rv(query)
        if too_large:
            raise too_large
        with EMULATOR.lock:
            items = [obj for obj in EMULATOR._list(kind, namespace if kind.namespaced else None) if matches(obj)]
            rv = EMULATOR.rv
        form, version = self.output_form()
        if form == "table":
            return self.send_json(200, table(kind, items, rv, version, query.get("includeObject", "Metadata")))
        if form == "metadata":
            return self.send_json(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                        "metadata": {"resourceVersion": str(rv)},
                                        "items": [partial_metadata(o) for o in items]})
        # Like the real server, list items carry no apiVersion/kind: the list says them.
        return self.send_json(200, {"kind": kind.list_kind, "apiVersion": kind.api_version,
                                    "metadata": {"resourceVersion": str(rv)}, "items": items})

    def item(self, method, kind, namespace, name, subresource, body, dry_run):
        with EMULATOR.lock:
            if method in ("GET", "HEAD"):
                obj = EMULATOR._get(kind, namespace, name)
                if obj is None:
                    raise not_found(kind, name)
                return self.send_json(200, self.render(kind, obj))
            if method == "PUT":
                obj = self.parse_json_body(body)
                return self.send_json(200, self.render(kind, EMULATOR.replace(kind, namespace, name, obj,
                                                                              subresource, dry_run)))
            if method == "PATCH":
                obj, created = EMULATOR.patch(kind, namespace, name, self.headers.get("Content-Type"), body,
                                              subresource, dry_run)
                return self.send_json(201 if created else 200, self.render(kind, obj))
            if method == "DELETE":
                options = self.parse_json_body(body) if body else {}
                obj, gone = EMULATOR.delete(kind, namespace, name, options, dry_run)
                if gone:
                    # Deleted at once: the real server answers a Success Status, not the object.
                    return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                "status": "Success",
                                                "details": {"name": name, "group": kind.group, "kind": kind.plural,
                                                            "uid": obj["metadata"]["uid"]}})
                return self.send_json(200, self.render(kind, obj))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def scale(self, method, kind, namespace, name, body, dry_run):
        if kind.plural not in WORKLOADS:
            raise PAGE_NOT_FOUND
        with EMULATOR.lock:
            obj = EMULATOR._get(kind, namespace, name)
            if obj is None:
                raise not_found(kind, name)
            if method in ("GET", "HEAD"):
                return self.send_json(200, EMULATOR.scale_of(kind, obj))
            if method == "PUT":
                scale = self.parse_json_body(body)
                if not isinstance(scale, dict):
                    raise bad_request("the body must be a Scale object")
            elif method == "PATCH":
                scale = apply_patch(self.headers.get("Content-Type"), EMULATOR.scale_of(kind, obj), body)
            else:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                        "resource")
            return self.send_json(200, EMULATOR.set_scale(kind, namespace, name, scale, dry_run))

    # -- streams --

    def register_stream(self, description):
        with EMULATOR.lock:
            EMULATOR.stream_ids += 1
            stream_id = EMULATOR.stream_ids
            EMULATOR.open_streams[stream_id] = description
        return stream_id

    def unregister_stream(self, stream_id):
        with EMULATOR.lock:
            EMULATOR.open_streams.pop(stream_id, None)

    def watch(self, kind, namespace, query):
        matches = self.selected(kind, namespace, query)
        form, version = self.output_form()
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial_events = query.get("sendInitialEvents") == "true"
        if initial_events and (query.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise ApiError(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: "
                                           "sendInitialEvents is only supported with resourceVersionMatch=NotOlderThan "
                                           "and allowWatchBookmarks=true")
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        too_large = self.wait_for_rv(query)

        def encode(event_type, obj):
            if event_type in ("BOOKMARK", "ERROR"):
                payload = obj
            elif form == "table":
                payload = table(kind, [obj], obj["metadata"]["resourceVersion"], version, "Metadata")
            elif form == "metadata":
                payload = partial_metadata(obj)
            else:
                payload = with_type(kind, obj)
            return json.dumps({"type": event_type, "object": payload}, separators=(",", ":")).encode() + b"\n"

        def bookmark(rv, initial_end=False):
            metadata = {"resourceVersion": str(rv), "creationTimestamp": None}
            if initial_end:
                metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
            if form == "metadata":
                return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}
            return {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": metadata}

        rv_param = query.get("resourceVersion", "")
        with EMULATOR.cond:
            epoch = EMULATOR.stream_epoch
            initial = []
            too_old = None
            if initial_events or rv_param in ("", "0"):
                initial = [o for o in EMULATOR._list(kind, namespace if kind.namespaced else None) if matches(o)]
                last = EMULATOR.rv
            else:
                last = int(rv_param)
                if last < EMULATOR.compacted_rv:
                    too_old = status_object(410, "Expired", f"too old resource version: {last} "
                                                            f"({EMULATOR.compacted_rv + 1})")
        stream_id = self.register_stream({"type": "watch", "resource": kind.plural, "namespace": namespace,
                                          "labelSelector": query.get("labelSelector"),
                                          "fieldSelector": query.get("fieldSelector"),
                                          "resourceVersion": rv_param, "format": form})
        try:
            self.start_chunked("application/json")
            if too_large or too_old:
                # The real server starts the watch and sends the error as its only event.
                error = too_large.status() if too_large else too_old
                self.write_chunk(encode("ERROR", error))
                return self.end_chunked()
            for obj in initial:
                self.write_chunk(encode("ADDED", obj))
            if initial_events:
                self.write_chunk(encode("BOOKMARK", bookmark(last, initial_end=True)))
            next_bookmark = time.monotonic() + float(EMULATOR.settings["bookmark_interval_seconds"])
            next_liveness_check = time.monotonic() + LIVENESS_SECONDS
            while True:
                ending = None
                with EMULATOR.cond:
                    while True:
                        now = time.monotonic()
                        if EMULATOR.stream_epoch != epoch:
                            ending = "dropped"
                        elif last < EMULATOR.compacted_rv:
                            # This watch fell behind the history (compact hook or a flood).
                            ending = "expired"
                        if ending or EMULATOR.rv > last or (deadline and now >= deadline) or \
                                (bookmarks and now >= next_bookmark) or now >= next_liveness_check:
                            break
                        wake = min(t for t in (deadline, next_bookmark if bookmarks else None, next_liveness_check)
                                   if t is not None)
                        EMULATOR.cond.wait(max(wake - now, 0.001))
                    events = EMULATOR.events_after(last)
                    too_old_rv, last = EMULATOR.compacted_rv + 1, EMULATOR.rv
                    abrupt = EMULATOR.abrupt_drop
                if ending == "dropped":
                    return self.end_chunked(abrupt=abrupt)
                if ending == "expired":
                    self.write_chunk(encode("ERROR", status_object(
                        410, "Expired", f"too old resource version: {last} ({too_old_rv})")))
                    return self.end_chunked()
                for event in events:
                    if event.plural != kind.plural:
                        continue
                    new_match = matches(event.obj)
                    old_match = event.old is not None and matches(event.old)
                    if event.type == "MODIFIED" and new_match != old_match:
                        # Selectors apply to both versions, as on the real server.
                        event_type = "ADDED" if new_match else "DELETED"
                    elif new_match:
                        event_type = event.type
                    else:
                        continue
                    self.write_chunk(encode(event_type, event.obj))
                now = time.monotonic()
                if bookmarks and now >= next_bookmark:
                    self.write_chunk(encode("BOOKMARK", bookmark(last)))
                    next_bookmark = now + float(EMULATOR.settings["bookmark_interval_seconds"])
                if deadline and now >= deadline:
                    return self.end_chunked()
                if now >= next_liveness_check:
                    # Nothing may be written for a long time; find hung-up clients anyway.
                    if self.client_gone():
                        raise StreamEnded()
                    next_liveness_check = now + LIVENESS_SECONDS
        finally:
            self.unregister_stream(stream_id)

    def pod_log(self, namespace, name, query):
        kind = KINDS["pods"]
        with EMULATOR.lock:
            pod = EMULATOR._get(kind, namespace, name)
            if pod is None:
                raise not_found(kind, name)
            containers = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
            container = query.get("container")
            if not container:
                default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
                if len(containers) == 1:
                    container = containers[0]
                elif default in containers:
                    container = default
                else:
                    raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                      f"[{' '.join(containers)}]")
            if container not in containers:
                raise bad_request(f"container {container} is not valid for pod {name}")
            status = next((s for s in pod.get("status", {}).get("containerStatuses") or []
                           if s.get("name") == container), {})
            waiting = (status.get("state") or {}).get("waiting")
            if waiting and not status.get("restartCount"):
                why = "trying and failing to pull image" if waiting.get("reason") in (
                    "ImagePullBackOff", "ErrImagePull") else waiting.get("reason", "ContainerCreating")
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
            if status == {} and not deleting(pod):
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
            if query.get("previous") in ("true", "1") and not status.get("restartCount"):
                raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            entries = list(EMULATOR.logs.get((namespace, name, container), []))
            epoch = EMULATOR.stream_epoch
        if query.get("sinceSeconds"):
            since = time.monotonic() - float(query["sinceSeconds"])
            entries = [e for e in entries if e[1] >= since]
        if query.get("tailLines"):
            tail = int(query["tailLines"])
            entries = entries[-tail:] if tail > 0 else []
        timestamps = query.get("timestamps") in ("true", "1")
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None

        def render(entry_list):
            return b"".join(((f"{stamp} " if timestamps else "") + line + "\n").encode()
                            for stamp, _, line in entry_list)

        if query.get("follow") not in ("true", "1"):
            data = render(entries)
            return self.send_bytes(200, data[:limit] if limit is not None else data, "text/plain")
        stream_id = self.register_stream({"type": "log", "namespace": namespace, "pod": name, "container": container})
        sent_bytes = 0
        try:
            self.start_chunked("text/plain")
            with EMULATOR.lock:
                seen = len(EMULATOR.logs.get((namespace, name, container), []))
            data = render(entries)
            next_liveness_check = time.monotonic() + LIVENESS_SECONDS
            while True:
                if limit is not None:
                    data = data[:max(limit - sent_bytes, 0)]
                self.write_chunk(data)
                sent_bytes += len(data)
                if limit is not None and sent_bytes >= limit:
                    return self.end_chunked()
                ending, new = None, []
                with EMULATOR.cond:
                    while True:
                        current_pod = EMULATOR._get(kind, namespace, name)
                        entries = EMULATOR.logs.get((namespace, name, container), [])
                        if EMULATOR.stream_epoch != epoch:
                            ending = "dropped"
                        elif current_pod is None or current_pod["metadata"]["uid"] != pod["metadata"]["uid"] or \
                                deleting(current_pod):
                            # The container stopped: a follow stream ends with it.
                            ending = "stopped"
                        elif len(entries) > seen:
                            new, seen = entries[seen:], len(entries)
                        if ending or new or time.monotonic() >= next_liveness_check:
                            break
                        EMULATOR.cond.wait(max(next_liveness_check - time.monotonic(), 0.001))
                    abrupt = EMULATOR.abrupt_drop
                if ending:
                    return self.end_chunked(abrupt=ending == "dropped" and abrupt)
                if time.monotonic() >= next_liveness_check:
                    if self.client_gone():
                        raise StreamEnded()
                    next_liveness_check = time.monotonic() + LIVENESS_SECONDS
                data = render(new)
        finally:
            self.unregister_stream(stream_id)

    # -- hooks --

    def hook(self, method, parts, body):
        name = "/".join(parts)
        if method == "GET" and name == "state":
            with EMULATOR.lock:
                return self.send_json(200, {
                    "resourceVersion": str(EMULATOR.rv), "compactedResourceVersion": str(EMULATOR.compacted_rv),
                    "settings": EMULATOR.settings, "imageRules": EMULATOR.image_rules,
                    "forbidRules": EMULATOR.fail_rules, "streams": list(EMULATOR.open_streams.values()),
                    "objects": len(EMULATOR.objects)})
        if method == "GET" and name == "requests":
            with EMULATOR.lock:
                return self.send_json(200, {"requests": list(EMULATOR.requests)})
        if method != "POST":
            raise PAGE_NOT_FOUND
        try:
            args = json.loads(body or b"{}")
        except ValueError as err:
            raise bad_request(f"hook body is not JSON: {err}") from None
        if not isinstance(args, dict):
            raise bad_request("hook body must be a JSON object")
        with EMULATOR.lock:
            result = {"ok": True}
            if name == "reset":
                EMULATOR.reset()
            elif name == "settings":
                unknown = set(args) - set(DEFAULT_SETTINGS)
                if unknown:
                    raise bad_request(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULT_SETTINGS)}")
                EMULATOR.settings.update({k: float(v) for k, v in args.items()})
                result = dict(EMULATOR.settings)
            elif name == "image-failure":
                if not args.get("image_contains"):
                    raise bad_request("image_contains is required")
                EMULATOR.image_rules = [r for r in EMULATOR.image_rules
                                        if r["image_contains"] != args["image_contains"]]
                reason = args.get("reason")
                if reason:
                    if reason not in ("CrashLoopBackOff", "Error", "OOMKilled", "ImagePullBackOff", "ErrImagePull"):
                        raise bad_request(f"unknown reason {reason}")
                    EMULATOR.image_rules.append(dict(args))
            elif name == "logs":
                pod = EMULATOR._get(KINDS["pods"], args.get("namespace", "default"), args.get("pod", ""))
                if pod is None:
                    raise not_found(KINDS["pods"], args.get("pod", ""))
                container = args.get("container") or pod["spec"]["containers"][0]["name"]
                EMULATOR._append_log(pod["metadata"]["namespace"], pod["metadata"]["name"], container,
                                     args.get("lines") or [])
            elif name == "forbid":
                if not args.get("verb") or not args.get("resource"):
                    raise bad_request("verb and resource are required")
                EMULATOR.fail_rules.append(dict(args))
            elif name == "allow":
                EMULATOR.fail_rules.clear()
            elif name == "drop-watches":
                EMULATOR.drop_streams(bool(args.get("abrupt")))
            elif name == "compact":
                EMULATOR.compact()
            elif name == "save":
                result = {"saved": EMULATOR.save()}
            else:
                raise PAGE_NOT_FOUND
            EMULATOR.reconcile()
        return self.send_json(200, result)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # kubectl fires its discovery requests in parallel.
    request_queue_size = 128


def controller_loop():
    while True:
        time.sleep(TICK_SECONDS)
        with EMULATOR.lock:
            try:
                EMULATOR.reconcile()
            except Exception:  # noqa: BLE001 - keep the controllers alive, but say why
                traceback.print_exc()


def main():
    global EMULATOR
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", help="load the state from here if it exists; /emulator/save writes it")
    parser.add_argument("--ready-delay", type=float, help="seconds a new pod takes to become ready")
    args = parser.parse_args()
    EMULATOR = Emulator(args.state_file)
    if args.ready_delay is not None:
        EMULATOR.settings["ready_delay_seconds"] = args.ready_delay
    try:
        server = Server((args.host, args.port), Handler)
    except OSError as err:
        # The harness looks for this to retry on another port.
        print(f"cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr, flush=True)
        sys.exit(98)
    threading.Thread(target=controller_loop, name="controllers", daemon=True).start()
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
