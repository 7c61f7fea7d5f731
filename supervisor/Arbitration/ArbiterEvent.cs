using System.Runtime.InteropServices;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>Everything that can change the worker pool arrives at the arbiter as one of these, in order.</summary>
internal abstract record ArbiterEvent;

/// <summary>A worker-host message: hello, ready, heartbeat or stopping.</summary>
internal sealed record WorkerReported(string WorkerKey, string Message) : ArbiterEvent;

/// <summary>A worker's control connection closed: it is exiting, or its worker-host failed.</summary>
internal sealed record WorkerDisconnected(string WorkerKey) : ArbiterEvent;

internal sealed record WorkerExited(WorkerProcess Worker, int ExitCode) : ArbiterEvent;

internal sealed record SignalReceived(PosixSignal Signal) : ArbiterEvent;

/// <summary>Time passed: check deadlines (boot timeouts, due respawns) and probe workers without a worker-host.</summary>
internal sealed record Tick : ArbiterEvent;
