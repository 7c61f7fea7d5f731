using System.Runtime.InteropServices;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>Everything that can change the worker pool arrives at the arbiter as one of these, in order.</summary>
internal abstract record ArbiterEvent;

/// <summary>A worker-host message: hello, ready, heartbeat or stopping.</summary>
internal sealed record WorkerReported(string WorkerKey, string Message) : ArbiterEvent;

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
