using System.Diagnostics;
using System.Runtime.InteropServices;
using Supervisor.Control;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>Everything that can change the worker pool arrives at the arbiter as one of these, in order.</summary>
internal abstract record ArbiterEvent;

/// <summary>A worker-host message: hello, ready, heartbeat or stopping.</summary>
internal sealed record WorkerReported(string WorkerKey, string Message, string? Argument = null) : ArbiterEvent;

/// <summary>
/// The request path found a worker gone: its control connection closed (it is exiting, or its
/// worker-host failed) or its socket refused a connection. The request path already routes around it.
/// </summary>
internal sealed record WorkerLost(string WorkerKey, string Reason) : ArbiterEvent;

internal sealed record WorkerExited(WorkerProcess Process, int ExitCode) : ArbiterEvent;

/// <summary>The proxy forwarded a worker's last request under --max-requests.</summary>
internal sealed record WorkerRequestLimitReached(string WorkerKey, long Limit) : ArbiterEvent;

internal sealed record SignalReceived(PosixSignal Signal) : ArbiterEvent;

/// <summary>Time passed: check deadlines (boot timeouts, heartbeats, due respawns) and sample memory.</summary>
internal sealed record Tick : ArbiterEvent;

/// <summary><c>supervisor status</c>: the pool as this turn of the loop sees it.</summary>
internal sealed record StatusRequested(TaskCompletionSource<PoolStatusReply> Reply) : ArbiterEvent;

/// <summary><c>supervisor reload</c>: a reload, as SIGHUP; with <paramref name="Wait"/> the reply is its result.</summary>
internal sealed record ReloadRequested(TaskCompletionSource<ReloadReply> Reply, bool Wait) : ArbiterEvent;

/// <summary>The supervisor a binary upgrade started has exited.</summary>
internal sealed record UpgradeExited(Process Process, int ExitCode) : ArbiterEvent;

/// <summary>The supervisor a binary upgrade started serves, and asks this one to hand over and stop.</summary>
internal sealed record TakeoverRequested(int Pid, TaskCompletionSource<TakeoverReply> Reply) : ArbiterEvent;

/// <summary>A supervisor started by a binary upgrade serves the handed-over sockets; <paramref name="HandedOver"/> if the old one agreed.</summary>
internal sealed record ServingAfterUpgrade(int FromPid, bool HandedOver) : ArbiterEvent;

/// <summary>Something outside the loop cannot go on (a handed-over socket that cannot be served): stop.</summary>
internal sealed record StopRequested(StopReason Reason) : ArbiterEvent;
