namespace Supervisor.WorkerHost;

/// <summary>
/// The contract between the supervisor and the worker-host: the environment the supervisor gives each
/// worker, and the newline-delimited messages the worker-host sends back over the control socket.
/// Both sides compile against this one definition.
/// </summary>
public static class WorkerProtocol
{
    /// <summary>Path of the supervisor's control socket (a Unix socket in the private run directory).</summary>
    public const string ControlSocketVariable = "SUPERVISOR_CONTROL_SOCKET";

    /// <summary>Unique name of this worker process, e.g. <c>w2-7</c>: slot 2, the 7th spawn.</summary>
    public const string WorkerKeyVariable = "SUPERVISOR_WORKER_KEY";

    /// <summary>The worker's slot, 0..N-1, stable across respawns: lets an app run singletons in one worker.</summary>
    public const string WorkerIdVariable = "SUPERVISOR_WORKER_ID";

    /// <summary>The reload generation the worker belongs to, 1 at start and one more per reload.</summary>
    public const string WorkerGenerationVariable = "SUPERVISOR_WORKER_GENERATION";

    /// <summary>The URL the worker must serve on (<c>http://unix:/run/dir/w2-7.sock</c>).</summary>
    public const string ListenUrlVariable = "SUPERVISOR_LISTEN_URL";

    /// <summary>The shared DataProtection key ring the worker-host gives an app that chose no key storage of its own.</summary>
    public const string DataProtectionDirectoryVariable = "SUPERVISOR_DATA_PROTECTION_DIR";

    /// <summary>The app's name, used as its DataProtection application name unless it set one.</summary>
    public const string ApplicationNameVariable = "SUPERVISOR_APP_NAME";

    /// <summary>Milliseconds between heartbeats.</summary>
    public const string HeartbeatIntervalVariable = "SUPERVISOR_HEARTBEAT_MS";

    /// <summary>
    /// What the supervisor adds to each request it forwards, which the worker's Kestrel limits must
    /// allow on top of the app's own: <c>FIELDS;OCTETS;LARGEST</c>, the fields it adds, the octets they
    /// and the request target (a field in HTTP/2) may take, and the largest single field it may send.
    /// </summary>
    public const string HeaderAllowanceVariable = "SUPERVISOR_HEADER_ALLOWANCE";

    /// <summary>
    /// --balancer kernel: the public listening sockets this worker inherited and serves clients on, as
    /// descriptors, each with <c>:h2c</c> when it serves cleartext HTTP/2 only: <c>3,4:h2c</c>. Absent
    /// in proxy mode, where the worker serves the supervisor on <see cref="ListenUrlVariable"/>.
    /// </summary>
    public const string ListenHandlesVariable = "SUPERVISOR_LISTEN_HANDLES";

    /// <summary>
    /// --balancer handoff: the supervisor's Unix socket (SOCK_SEQPACKET) over which it hands this worker
    /// the client connections it accepted (<see cref="DescriptorPassing"/>). The worker connects, sends its
    /// key, then receives one descriptor per message and sends one byte back for each that closes.
    /// </summary>
    public const string HandoffSocketVariable = "SUPERVISOR_HANDOFF_SOCKET";

    /// <summary>--balancer handoff: the public listeners by number, <c>0,1:h2c</c>, as each handed connection names its own.</summary>
    public const string HandoffListenersVariable = "SUPERVISOR_HANDOFF_LISTENERS";

    /// <summary>
    /// --balancer kernel: <c>DESCRIPTOR:ENTRY</c>, the shared <see cref="AcceptShareTable"/> this worker
    /// inherited and its own entry in it, where it says how many connections it holds (<see cref="FairAccept"/>).
    /// </summary>
    public const string AcceptShareVariable = "SUPERVISOR_ACCEPT_SHARE";

    /// <summary>--balancer kernel: the requests after which the worker asks to be recycled (--max-requests with its jitter); 0 for none.</summary>
    public const string RequestLimitVariable = "SUPERVISOR_REQUEST_LIMIT";

    /// <summary>--balancer kernel: --keep-alive in milliseconds, the idle time after which the worker closes a client's connection.</summary>
    public const string KeepAliveVariable = "SUPERVISOR_KEEPALIVE_MS";

    /// <summary>
    /// --balancer kernel and handoff: --forwarded-allow-ips, as the supervisor spells it (<c>127.0.0.1,::1</c>,
    /// or <c>*</c>): the peers whose X-Forwarded-* or Forwarded headers the worker-host believes.
    /// </summary>
    public const string ForwardedAllowIpsVariable = "SUPERVISOR_FORWARDED_ALLOW_IPS";

    /// <summary>--balancer kernel and handoff, with --certfile: the PEM certificate the worker serves TLS with (an absolute path).</summary>
    public const string CertFileVariable = "SUPERVISOR_CERT_FILE";

    /// <summary>--balancer kernel and handoff, with --keyfile: the certificate's PEM private key (an absolute path).</summary>
    public const string KeyFileVariable = "SUPERVISOR_KEY_FILE";

    /// <summary>
    /// --balancer kernel and handoff, with --access-logfile: the supervisor's Unix socket to which the worker
    /// streams its access-log lines (UTF-8, one per line); the supervisor writes them to the one access log.
    /// </summary>
    public const string AccessLogSocketVariable = "SUPERVISOR_ACCESS_LOG_SOCKET";

    /// <summary>--balancer kernel and handoff: --access-logformat, which the worker renders each line in.</summary>
    public const string AccessLogFormatVariable = "SUPERVISOR_ACCESS_LOG_FORMAT";

    /// <summary>First message on a connection: <c>hello KEY PID</c>.</summary>
    public const string Hello = "hello";

    /// <summary>The app's server is listening: the worker may take requests.</summary>
    public const string Ready = "ready";

    /// <summary>Sent periodically from a thread-pool timer while the process is alive and not frozen.</summary>
    public const string Heartbeat = "heartbeat";

    /// <summary>The app has begun its graceful shutdown.</summary>
    public const string Stopping = "stopping";

    /// <summary>--balancer kernel: the worker has served its request limit: <c>limit N</c>.</summary>
    public const string Limit = "limit";

    /// <summary>--balancer kernel: what the worker served, sent as it stops: <c>served N</c>.</summary>
    public const string Served = "served";

    /// <summary>Supervisor to worker, --balancer kernel: the worker is in rotation; it starts accepting client connections.</summary>
    public const string Accept = "accept";

    /// <summary>
    /// Supervisor to worker, --balancer kernel: the worker is out of rotation. It stops accepting, answers
    /// each HTTP/1.1 request with Connection: close and each HTTP/2 connection with GOAWAY, and stops
    /// once its connections are closed or the keep-alive time has passed, finishing what is in flight.
    /// </summary>
    public const string Drain = "drain";

    public const int DefaultHeartbeatMilliseconds = 1000;
}
