#!/bin/sh
# Writes Redis's ACL file for LeadRelay to $1: the default user off, and one
# user per role, each with its own password, taken from the environment:
#
#   intake  REDIS_INTAKE_PASSWORD  (leadrelay intake; its ops UI)
#   worker  REDIS_WORKER_PASSWORD  (leadrelay worker)
#   ops     REDIS_OPS_PASSWORD     (leadrelay ctl; the compose healthcheck)
#
# The file holds only SHA-256 digests of the passwords. Each user reaches
# only LeadRelay's and asynq's keys, asynq's cancel channel and
# LeadRelay's wake channels (intake wakes idle workers), and no
# administrative or dangerous command (FLUSHALL, KEYS, CONFIG, DEBUG, ACL,
# MONITOR, SHUTDOWN, ...) except INFO, which intake's memory guard and the
# UI read. The three roles run the same asynq scripts and commands, so
# their commands cannot be told apart further: what separates them is the
# user, its password and what a leaked one gives.
#
# docker-compose.yml runs it before redis-server; anywhere else:
#   REDIS_INTAKE_PASSWORD=… REDIS_WORKER_PASSWORD=… REDIS_OPS_PASSWORD=… \
#     sh deploy/redis-acl.sh /etc/redis/users.acl   # then: aclfile /etc/redis/users.acl
set -eu
out=${1:?usage: redis-acl.sh OUTPUT-FILE}
rules='resetchannels &asynq:cancel &leadrelay:* resetkeys ~asynq:* ~leadrelay:* +@all -@admin -@dangerous +info'
digest() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
user() {
  if [ ${#2} -lt 16 ]; then
    echo "redis-acl.sh: the $1 password must have 16 or more characters (openssl rand -hex 24)" >&2
    exit 1
  fi
  echo "user $1 on #$(digest "$2") $rules"
}
umask 077
{
  echo "user default off"
  user intake "${REDIS_INTAKE_PASSWORD:?set REDIS_INTAKE_PASSWORD}"
  user worker "${REDIS_WORKER_PASSWORD:?set REDIS_WORKER_PASSWORD}"
  user ops "${REDIS_OPS_PASSWORD:?set REDIS_OPS_PASSWORD}"
} > "$out.tmp"
mv "$out.tmp" "$out"
