using System.Text.Json;
using Supervisor.Logging;
using Supervisor.Proxy;
using Supervisor.WorkerHost;

namespace Supervisor.Configuration;

/// <summary>
/// Every setting of the supervisor, declared once. Names, defaults and meanings follow Gunicorn's
/// (<c>gunicorn/config.py</c>) wherever they fit an ASP.NET Core app; where they differ, the description says so.
/// </summary>
internal static class Settings
{
    public const string AppSection = "The app and its workers";
    public const string LifecycleSection = "Timeouts and recycling";
    public const string ServerSection = "The public side: addresses, limits, TLS";
    public const string LoggingSection = "Logging";
    public const string ConfigSection = "Configuration";

    // ---- The app and its workers ----

    public static readonly Setting<AppTarget?> App = new()
    {
        Key = "app",
        Flags = ["--app"],
        Meta = "PATH",
        Section = AppSection,
        Description = "The app to run: its main .dll (run with 'dotnet') or its executable, as 'dotnet build' or 'dotnet publish' made it. Required. Unlike Gunicorn's module:variable, a .NET app is run as built.",
        DefaultText = "none",
        Read = values => AppTarget.Resolve(ValueReaders.Text(values)),
        Default = null,
        Write = (writer, app) => writer.WriteStringValue(app?.Path),
    };

    /// <summary>Two workers. Measured on 2 cores: 4 workers were no faster than 2 and cost about 90 MB each (bench/README.md).</summary>
    public const int DefaultWorkers = 2;

    public static readonly Setting<int> Workers = new()
    {
        Key = "workers",
        Flags = ["--workers", "-w"],
        Meta = "N",
        Section = AppSection,
        Description = "Number of worker processes. A .NET worker is multi-threaded and uses every core, so more workers than cores add memory, not throughput; two keep the app serving while one is being replaced. TTIN/TTOU change it while running.",
        DefaultText = DefaultWorkers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        DefaultOrigin = "$WEB_CONCURRENCY if set, as Gunicorn; else 2, measured (Gunicorn: 1)",
        DefaultVariables = ["WEB_CONCURRENCY"],
        Read = ValueReaders.WholeNumber(1),
        Default = DefaultWorkers,
        Write = WriteNumber,
    };

    public static readonly Setting<string?> Chdir = new()
    {
        Key = "chdir",
        Flags = ["--chdir"],
        Meta = "DIR",
        Section = AppSection,
        Description = "Working directory (content root) of the workers.",
        DefaultText = "the app's folder",
        DefaultOrigin = "so that its appsettings.json is found",
        Read = ValueReaders.ExistingDirectory,
        Default = null,
        Write = WriteString,
    };

    public static readonly Setting<IReadOnlyDictionary<string, string>> Env = new()
    {
        Key = "env",
        Flags = ["--env", "-e"],
        KeyAliases = ["raw_env"],
        Meta = "KEY=VALUE",
        Section = AppSection,
        Shape = SettingShape.List,
        HasEnvironmentVariable = false,
        Description = "An environment variable for the workers; repeatable. In the config file, an object {\"KEY\": \"VALUE\"} or Gunicorn's list [\"KEY=VALUE\"]. Workers also inherit the supervisor's own environment.",
        DefaultText = "none",
        Read = ValueReaders.EnvironmentPairs,
        Default = new Dictionary<string, string>(),
        Write = WriteObject,
    };

    public static readonly Setting<WorkerProtocolVersion> WorkerProtocol = new()
    {
        Key = "worker_protocol",
        Flags = ["--worker-protocol"],
        Meta = "http2|http1",
        Section = AppSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Protocol from the proxy to the workers' sockets: HTTP/2 cleartext (prior knowledge; measured about a third less CPU per request on both sides) or HTTP/1.1.",
        DefaultText = "http2",
        DefaultOrigin = "measured, bench/README.md",
        Read = ValueReaders.Choice(("http2", WorkerProtocolVersion.Http2), ("http1", WorkerProtocolVersion.Http1)),
        Default = WorkerProtocolVersion.Http2,
        Write = (writer, value) => writer.WriteStringValue(value == WorkerProtocolVersion.Http2 ? "http2" : "http1"),
    };

    public static readonly Setting<Balancer> BalancerSetting = new()
    {
        Key = "balancer",
        Flags = ["--balancer"],
        Meta = "proxy|kernel|handoff",
        Section = AppSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "proxy: the supervisor takes each request and gives it to the least busy worker. kernel: the workers accept the client connections themselves on the sockets the supervisor binds (Gunicorn's model). handoff: the supervisor accepts each connection and hands it to the worker with the fewest, which serves it. kernel and handoff are faster, but without per-request balancing, --request-timeout, --max-queue, --sticky-sessions and the front's limits; see docs/balancer.md.",
        DefaultText = "proxy",
        Read = ValueReaders.Choice(("proxy", Balancer.Proxy), ("kernel", Balancer.Kernel), ("handoff", Balancer.Handoff)),
        Default = Balancer.Proxy,
        Write = (writer, value) => writer.WriteStringValue(value.Name()),
    };

    public static readonly Setting<bool> StickySessions = new()
    {
        Key = "sticky_sessions",
        Flags = ["--sticky-sessions"],
        Section = AppSection,
        Shape = SettingShape.Switch,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Keep each client on one worker (cookie .Supervisor.Worker) while that worker lives, for apps with in-process state; when it is recycled the client moves on without an error.",
        DefaultText = "false",
        Read = ValueReaders.Switch,
        Default = false,
        Write = WriteBoolean,
    };

    public static readonly Setting<string?> DataProtectionDir = new()
    {
        Key = "data_protection_dir",
        Flags = ["--data-protection-dir"],
        Meta = "DIR",
        Section = AppSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "The DataProtection key ring all workers share (auth cookies, antiforgery tokens), mode 0700, unless the app configures its own key storage.",
        DefaultText = "$XDG_STATE_HOME/supervisor/APP/keys",
        DefaultOrigin = "~/.local/state/...: state that must survive restarts, per app",
        Read = ValueReaders.FullPath,
        Default = null,
        Write = WriteString,
    };

    public static readonly Setting<string?> SocketDir = new()
    {
        Key = "socket_dir",
        Flags = ["--socket-dir"],
        Meta = "DIR",
        Section = AppSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Directory for the workers' Unix sockets, created with mode 0700; an existing one must be yours, mode 0700 and not a symlink. Stale sockets of a killed supervisor are removed, nothing else. Without it, each start also removes the default directories of this user's killed supervisors (pid gone, control socket silent), so SIGKILLs do not pile up in /tmp.",
        DefaultText = "a fresh directory under $XDG_RUNTIME_DIR, else the temp directory",
        Read = ValueReaders.FullPath,
        Default = null,
        Write = WriteString,
    };

    // ---- Timeouts and recycling ----

    public static readonly Setting<TimeSpan> Timeout = new()
    {
        Key = "timeout",
        Flags = ["--timeout", "-t"],
        Meta = "SECONDS",
        Section = LifecycleSection,
        Description = "A worker whose heartbeat is silent this long (frozen, deadlocked, stopped) is taken out of rotation, killed and replaced. A slow request on a live worker is not a reason: see --request-timeout.",
        DefaultText = "30",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.Seconds(zeroMeans: "turns the check off"),
        Default = TimeSpan.FromSeconds(30),
        Write = WriteSeconds,
    };

    public static readonly Setting<TimeSpan> GracefulTimeout = new()
    {
        Key = "graceful_timeout",
        Flags = ["--graceful-timeout"],
        Meta = "SECONDS",
        Section = LifecycleSection,
        Description = "How long in-flight requests and stopping workers get (on SIGTERM, recycle, reload) before connections are cut and workers get SIGKILL. Also the app's own shutdown timeout.",
        DefaultText = "30",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.Seconds(zeroMeans: "stops at once"),
        Default = TimeSpan.FromSeconds(30),
        Write = WriteSeconds,
    };

    public static readonly Setting<TimeSpan> BootTimeout = new()
    {
        Key = "boot_timeout",
        Flags = ["--boot-timeout"],
        Meta = "SECONDS",
        Section = LifecycleSection,
        Description = "How long a new worker has to start listening before it counts as failed to boot. Not in Gunicorn, whose --timeout bounds the boot too.",
        DefaultText = "30",
        DefaultOrigin = "Gunicorn's --timeout",
        Read = ValueReaders.Seconds(),
        Default = TimeSpan.FromSeconds(30),
        Write = WriteSeconds,
    };

    public static readonly Setting<TimeSpan> RequestTimeout = new()
    {
        Key = "request_timeout",
        Flags = ["--request-timeout"],
        Meta = "SECONDS",
        Section = LifecycleSection,
        Description = "No response activity from a worker for this long: the client gets 504 and the worker lives on. Not in Gunicorn, where a slow request costs the worker.",
        DefaultText = "0",
        Read = ValueReaders.Seconds(zeroMeans: "means no limit"),
        Default = TimeSpan.Zero,
        Write = WriteSeconds,
    };

    public static readonly Setting<int> MaxRequests = new()
    {
        Key = "max_requests",
        Flags = ["--max-requests"],
        Meta = "N",
        Section = LifecycleSection,
        Description = "Recycle a worker after it has served this many requests. Overlapped: its replacement is ready before it leaves rotation, then it drains.",
        DefaultText = "0",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(0, zeroMeans: "turns it off"),
        Default = 0,
        Write = WriteNumber,
    };

    public static readonly Setting<int> MaxRequestsJitter = new()
    {
        Key = "max_requests_jitter",
        Flags = ["--max-requests-jitter"],
        Meta = "N",
        Section = LifecycleSection,
        Description = "Each worker's limit is max_requests + random(0..N), so workers do not recycle together.",
        DefaultText = "0",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(0),
        Default = 0,
        Write = WriteNumber,
    };

    public static readonly Setting<int> MaxMemory = new()
    {
        Key = "max_memory",
        Flags = ["--max-memory"],
        Meta = "MB",
        Section = LifecycleSection,
        Description = "Recycle (overlapped) a worker whose resident memory stays above this for 3 samples a second apart. Not in Gunicorn: PM2's max_memory_restart, uWSGI's reload-on-rss.",
        DefaultText = "0",
        Read = ValueReaders.WholeNumber(0, zeroMeans: "turns it off"),
        Default = 0,
        Write = WriteNumber,
    };

    // ---- The public side ----

    public static readonly Setting<IReadOnlyList<BindAddress>> Bind = new()
    {
        Key = "bind",
        Flags = ["--bind", "-b"],
        Meta = "ADDRESS",
        Section = ServerSection,
        Shape = SettingShape.List,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT, unix:PATH or fd://N (a listening socket the supervisor was started with); repeatable. Port 0 picks a free port (logged). After h2c: (h2c:127.0.0.1:8001) the address speaks HTTP/2 with prior knowledge only, for gRPC clients and h2c proxies. Under systemd's socket activation (LISTEN_FDS), the sockets it passed are served instead, as Gunicorn does; after a binary upgrade (USR2), those the old supervisor handed over.",
        DefaultText = "127.0.0.1:8000",
        DefaultOrigin = "Gunicorn's; 0.0.0.0:$PORT when $PORT is set, as Gunicorn; else what the app alone would bind from $ASPNETCORE_URLS or $ASPNETCORE_HTTP_PORTS (8080 in the official ASP.NET Core images), + and * as 0.0.0.0",
        DefaultVariables = ["PORT", .. HostingVariables.BindVariables],
        FromDefaultVariable = HostingVariables.ToBindAddresses,
        Read = values => [.. ValueReaders.CommaSeparated(values).Select(BindAddress.Parse)],
        Default = [new TcpBind("127.0.0.1", BindAddress.DefaultPort)],
        Write = (writer, binds) => WriteArray(writer, binds.Select(bind => bind.ToString())),
    };

    public static readonly Setting<BindAddress?> AdminBind = new()
    {
        Key = "admin_bind",
        Flags = ["--admin-bind"],
        Meta = "ADDRESS",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Address for the health endpoints, never served on --bind: GET /livez (200 while the supervisor's loop turns), /readyz (200 while a worker is in rotation, through reloads; 503 from the moment a stop begins) and /metrics (Prometheus text: requests by status and duration, connections, workers ready and by state, requests in flight and queued, replacements by reason, reloads by result, requests refused, workers' resident memory; in kernel and handoff modes the requests the workers served), for systemd, Docker's HEALTHCHECK, Kubernetes probes and Prometheus. HOST:PORT or unix:PATH; keep it off the public network.",
        DefaultText = "off",
        Read = values => values is [var text] ? BindAddress.Parse(text) : throw new SettingValueException("give one address"),
        Default = null,
        Write = (writer, bind) => WriteString(writer, bind?.ToString()),
    };

    public static readonly Setting<int> Backlog = new()
    {
        Key = "backlog",
        Flags = ["--backlog"],
        Meta = "N",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "The most connections waiting to be accepted on each address (the listen backlog; Linux caps it at net.core.somaxconn).",
        DefaultText = "2048",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(1),
        Default = 2048,
        Write = WriteNumber,
    };

    public static readonly Setting<int> MaxQueue = new()
    {
        Key = "max_queue",
        Flags = ["--max-queue"],
        Meta = "N",
        Section = ServerSection,
        Description = "The most requests that wait at the supervisor for a worker when every worker has --worker-connections requests (or none is ready yet); past it, 503. Not in Gunicorn, whose clients wait in the listen backlog instead (HAProxy's maxqueue).",
        DefaultText = "2048",
        DefaultOrigin = "as Gunicorn's --backlog",
        Read = ValueReaders.WholeNumber(0, zeroMeans: "refuses at once when no worker is free"),
        Default = 2048,
        Write = WriteNumber,
    };

    public static readonly Setting<int> WorkerConnections = new()
    {
        Key = "worker_connections",
        Flags = ["--worker-connections"],
        Meta = "N",
        Section = ServerSection,
        Description = "The most requests in flight at one worker. Beyond it, requests wait at the supervisor for a free worker (up to --max-queue, then 503). Gunicorn's sync workers are 1.",
        DefaultText = "1000",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(1),
        Default = 1000,
        Write = WriteNumber,
    };

    public static readonly Setting<TimeSpan> KeepAlive = new()
    {
        Key = "keep_alive",
        Flags = ["--keep-alive"],
        KeyAliases = ["keepalive"],
        Meta = "SECONDS",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "How long an idle client connection is kept open. Raise it behind a load balancer that keeps connections longer (nginx's upstream keepalive_timeout is 60 s).",
        DefaultText = "2",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.Seconds(),
        Default = TimeSpan.FromSeconds(2),
        Write = WriteSeconds,
    };

    public static readonly Setting<TimeSpan> HeaderTimeout = new()
    {
        Key = "header_timeout",
        Flags = ["--header-timeout"],
        Meta = "SECONDS",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "A client must send a request's headers within this long, or its connection is closed: slow-header (slowloris) clients cannot hold connections. Request bodies must also arrive at 240 bytes/s or more after 5 s (Kestrel's minimum rate). Not in Gunicorn.",
        DefaultText = "10",
        DefaultOrigin = "HAProxy's advised 'timeout http-request'; Kestrel's is 30",
        Read = ValueReaders.Seconds(),
        Default = TimeSpan.FromSeconds(10),
        Write = WriteSeconds,
    };

    public static readonly Setting<TimeSpan> SendTimeout = new()
    {
        Key = "send_timeout",
        Flags = ["--send-timeout"],
        Meta = "SECONDS",
        Section = ServerSection,
        Description = "A client that takes nothing of its response for this long is disconnected. A response its client stops reading gives up its worker's --worker-connections place after 0.25 s, so clients that never read cannot starve the others; meanwhile it holds about 110 KB in the supervisor (measured). Not in Gunicorn.",
        DefaultText = "60",
        DefaultOrigin = "nginx's send_timeout; HAProxy's 'timeout client' is commonly 30-60",
        Read = ValueReaders.Seconds(zeroMeans: "means no limit"),
        Default = TimeSpan.FromSeconds(60),
        Write = WriteSeconds,
    };

    public static readonly Setting<int> LimitRequestLine = new()
    {
        Key = "limit_request_line",
        Flags = ["--limit-request-line"],
        Meta = "BYTES",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Longest request line (method, target, version) accepted; longer gets 414 from the supervisor.",
        DefaultText = "4094",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(0, EdgeLimits.MaxRequestLineBytes, zeroMeans: $"means the most the supervisor accepts, {EdgeLimits.MaxRequestLineBytes}"),
        Default = 4094,
        Write = WriteNumber,
    };

    public static readonly Setting<int> LimitRequestFields = new()
    {
        Key = "limit_request_fields",
        Flags = ["--limit-request-fields"],
        Meta = "N",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Most header fields in a request; more gets 431 from the supervisor.",
        DefaultText = "100",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(1, 32768),
        Default = 100,
        Write = WriteNumber,
    };

    public static readonly Setting<int> LimitRequestFieldSize = new()
    {
        Key = "limit_request_field_size",
        Flags = ["--limit-request-field-size"],
        Meta = "BYTES",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Largest header field (name, ': ' and value) in a request; larger gets 431 from the supervisor. All of a request's headers together are also held to Kestrel's 32 KB (or this, if larger).",
        DefaultText = "8190",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.WholeNumber(0, EdgeLimits.MaxHeaderBytes, zeroMeans: "leaves only the total limit"),
        Default = 8190,
        Write = WriteNumber,
    };

    public static readonly Setting<long> LimitRequestBody = new()
    {
        Key = "limit_request_body",
        Flags = ["--limit-request-body"],
        Meta = "BYTES",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Largest request body the supervisor forwards; a larger Content-Length gets 413 before any worker sees the request, and a chunked body is cut at the limit. Not in Gunicorn (nginx's client_max_body_size).",
        DefaultText = "0",
        DefaultOrigin = "off: the app's own limit applies (Kestrel's 30 MB unless an endpoint raises it), which a blanket limit here would override",
        Read = ValueReaders.Count(0, zeroMeans: "leaves the limit to the app"),
        Default = 0,
        Write = WriteNumber,
    };

    public static readonly Setting<TrustedProxies> ForwardedAllowIps = new()
    {
        Key = "forwarded_allow_ips",
        Flags = ["--forwarded-allow-ips"],
        Meta = "ADDRESSES",
        Section = ServerSection,
        Description = "The peers (a proxy in front, such as nginx) trusted to give the client's address, scheme and host in X-Forwarded-For/-Proto/-Host or Forwarded: comma-separated addresses or networks (10.0.0.0/8), or * for any. From anyone else those headers are replaced; the app always sees the true values.",
        DefaultText = "127.0.0.1,::1",
        DefaultOrigin = "Gunicorn's; $FORWARDED_ALLOW_IPS when set, as Gunicorn",
        DefaultVariables = ["FORWARDED_ALLOW_IPS"],
        Read = values => ValueReaders.Parsed(() => TrustedProxies.Parse(ValueReaders.CommaSeparated(values))),
        Default = TrustedProxies.Parse(["127.0.0.1", "::1"]),
        Write = (writer, proxies) => writer.WriteStringValue(proxies.ToString()),
    };

    public static readonly Setting<string?> CertFile = new()
    {
        Key = "certfile",
        Flags = ["--certfile"],
        Meta = "FILE",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "PEM certificate (chain) to serve HTTPS, with HTTP/1.1 and HTTP/2, on every --bind address. Needs --keyfile.",
        DefaultText = "none (plain HTTP)",
        Read = ValueReaders.FullPath,
        Default = null,
        Write = WriteString,
    };

    public static readonly Setting<string?> KeyFile = new()
    {
        Key = "keyfile",
        Flags = ["--keyfile"],
        Meta = "FILE",
        Section = ServerSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "PEM private key of --certfile.",
        DefaultText = "none",
        Read = ValueReaders.FullPath,
        Default = null,
        Write = WriteString,
    };

    // ---- Logging ----

    public static readonly Setting<string> ErrorLogFile = new()
    {
        Key = "error_logfile",
        Flags = ["--error-logfile", "--log-file"],
        KeyAliases = ["errorlog"],
        Meta = "FILE",
        Section = LoggingSection,
        Description = "Where the error log (the supervisor's own events and its workers' output) goes: a file, or - for stderr. Reopened on SIGUSR1.",
        DefaultText = "-",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.LogDestination,
        Default = "-",
        Write = WriteString,
    };

    public static readonly Setting<LogLevelName> LogLevel = new()
    {
        Key = "log_level",
        Flags = ["--log-level"],
        KeyAliases = ["loglevel"],
        Meta = "LEVEL",
        Section = LoggingSection,
        Description = "The error log's level: debug, info, warning, error, critical.",
        DefaultText = "info",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.Choice(
            ("debug", LogLevelName.Debug), ("info", LogLevelName.Info), ("warning", LogLevelName.Warning),
            ("error", LogLevelName.Error), ("critical", LogLevelName.Critical)),
        Default = LogLevelName.Info,
        Write = (writer, level) => writer.WriteStringValue(level.ToString().ToLowerInvariant()),
    };

    public static readonly Setting<ErrorLogFormat> LogFormat = new()
    {
        Key = "log_format",
        Flags = ["--log-format"],
        Meta = "gunicorn|json",
        Section = LoggingSection,
        Description = "The error log's lines: Gunicorn's '[time] [pid] [LEVEL] message', or one JSON object per line with the event's fields. Not in Gunicorn.",
        DefaultText = "gunicorn",
        Read = ValueReaders.Choice(("gunicorn", ErrorLogFormat.Gunicorn), ("json", ErrorLogFormat.Json)),
        Default = ErrorLogFormat.Gunicorn,
        Write = (writer, format) => writer.WriteStringValue(format.ToString().ToLowerInvariant()),
    };

    public static readonly Setting<string?> AccessLogFile = new()
    {
        Key = "access_logfile",
        Flags = ["--access-logfile"],
        KeyAliases = ["accesslog"],
        Meta = "FILE",
        Section = LoggingSection,
        Description = "Where the access log goes: a file, or - for stdout. Written off the request path; reopened on SIGUSR1.",
        DefaultText = "none (off)",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.LogDestination,
        Default = null,
        Write = WriteString,
    };

    public static readonly Setting<AccessLogFormat> AccessLogFormatSetting = new()
    {
        Key = "access_logformat",
        Flags = ["--access-logformat"],
        KeyAliases = ["access_log_format"],
        Meta = "FORMAT",
        Section = LoggingSection,
        Description = "The access log's line, in Gunicorn's atoms: h remote address, l '-', u user, t time, r request line, m method, U path, q query, H protocol, s status, B bytes, b bytes or '-', f referer, a user agent, T/M/D/L duration in s/ms/µs/decimal s, p worker pid, {name}i request header, {name}o response header, {NAME}e environment variable.",
        DefaultText = AccessLogFormat.GunicornDefault,
        DefaultOrigin = "Gunicorn's",
        Read = values => ValueReaders.Parsed(() => AccessLogFormat.Parse(ValueReaders.Text(values))),
        Default = AccessLogFormat.Parse(AccessLogFormat.GunicornDefault),
        Write = (writer, format) => writer.WriteStringValue(format.Text),
    };

    // ---- Configuration ----

    public static readonly Setting<string?> Config = new()
    {
        Key = "config",
        Flags = ["--config", "-c"],
        Meta = "FILE",
        Section = ConfigSection,
        InConfigFile = false,
        Description = "A JSON config file whose keys are these settings' names (max_requests, or Gunicorn's own such as keepalive, accesslog). Re-read on SIGHUP; a bad file is reported and the running configuration kept.",
        DefaultText = "none",
        Read = ValueReaders.FullPath,
        Default = null,
        Write = WriteString,
    };

    public static readonly Setting<string?> Pidfile = new()
    {
        Key = "pidfile",
        Flags = ["--pidfile", "--pid", "-p"],
        Meta = "FILE",
        Section = ConfigSection,
        OnReload = ReloadEffect.NeedsRestart,
        Description = "Write the supervisor's pid to this file at start and remove it at stop.",
        DefaultText = "none",
        DefaultOrigin = "Gunicorn's",
        Read = ValueReaders.FullPath,
        Default = null,
        Write = WriteString,
    };

    /// <summary>Every setting, in the order of <c>--help</c> and the README.</summary>
    public static readonly IReadOnlyList<Setting> All =
    [
        App, Workers, Chdir, Env, BalancerSetting, WorkerProtocol, StickySessions, DataProtectionDir, SocketDir,
        Timeout, GracefulTimeout, BootTimeout, RequestTimeout, MaxRequests, MaxRequestsJitter, MaxMemory,
        Bind, AdminBind, Backlog, WorkerConnections, MaxQueue, KeepAlive, HeaderTimeout, SendTimeout, LimitRequestLine, LimitRequestFields, LimitRequestFieldSize,
        LimitRequestBody, ForwardedAllowIps, CertFile, KeyFile,
        ErrorLogFile, LogLevel, LogFormat, AccessLogFile, AccessLogFormatSetting,
        Config, Pidfile,
    ];

    private static void WriteString(Utf8JsonWriter writer, string? value) => writer.WriteStringValue(value);

    private static void WriteNumber(Utf8JsonWriter writer, int value) => writer.WriteNumberValue(value);

    private static void WriteNumber(Utf8JsonWriter writer, long value) => writer.WriteNumberValue(value);

    private static void WriteBoolean(Utf8JsonWriter writer, bool value) => writer.WriteBooleanValue(value);

    private static void WriteSeconds(Utf8JsonWriter writer, TimeSpan value) => writer.WriteNumberValue((long)value.TotalSeconds);

    private static void WriteArray(Utf8JsonWriter writer, IEnumerable<string> values)
    {
        writer.WriteStartArray();
        foreach (var value in values)
        {
            writer.WriteStringValue(value);
        }
        writer.WriteEndArray();
    }

    private static void WriteObject(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> pairs)
    {
        writer.WriteStartObject();
        foreach (var (key, value) in pairs)
        {
            writer.WriteString(key, value);
        }
        writer.WriteEndObject();
    }
}
