# Shared by bench/run.sh and bench/s3.sh (sourced, not run): a free
# loopback port, the processes stopped on exit, and a loopback nginx of the
# benchmark's own (its config, root, ports and temp dirs under the work dir).

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Every process in PIDS is stopped when the script exits, however it ends.
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# start_nginx NGINX WORK HTTP_LINES: writes WORK/nginx/nginx.conf (the
# settings both benchmarks share, then HTTP_LINES: the server blocks and
# any other http-level lines), starts nginx in the background, adds it to
# PIDS and sets NGINX_PID.
start_nginx() {
    local nginx=$1 work=$2 http_lines=$3
    mkdir -p "$work"/nginx/{temp,logs}
    cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
user root root;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    types { image/jpeg jpg; image/png png; video/mp4 mp4; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/temp/body;
    proxy_temp_path $work/nginx/temp/proxy;
    fastcgi_temp_path $work/nginx/temp/fastcgi;
    uwsgi_temp_path $work/nginx/temp/uwsgi;
    scgi_temp_path $work/nginx/temp/scgi;
$http_lines
}
CONF
    "$nginx" -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/logs/error.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
}
