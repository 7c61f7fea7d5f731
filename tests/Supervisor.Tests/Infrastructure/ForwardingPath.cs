namespace Supervisor.Tests.Infrastructure;

/// <summary>The ways a request reaches a worker, for the tests that must hold on each.</summary>
public enum ForwardingPath
{
    /// <summary>The default: the front's own HTTP/2 client for requests without a body, YARP over HTTP/2 for the rest.</summary>
    Default,

    /// <summary>--worker-protocol http1: YARP over HTTP/1.1 for every request.</summary>
    Http1Workers,

    /// <summary>--balancer kernel: no proxy; the workers accept the client connections themselves.</summary>
    Kernel,

    /// <summary>--balancer handoff: no proxy; the supervisor accepts each connection and hands it to a worker, which serves it.</summary>
    Handoff,
}

internal static class ForwardingPathArguments
{
    public static string[] Arguments(this ForwardingPath path) => path switch
    {
        ForwardingPath.Http1Workers => ["--worker-protocol", "http1"],
        ForwardingPath.Kernel => ["--balancer", "kernel"],
        ForwardingPath.Handoff => ["--balancer", "handoff"],
        _ => [],
    };

    /// <summary>Kernel and handoff modes: the workers serve the client connections; no proxy sees the requests.</summary>
    public static bool WorkersServeClients(this ForwardingPath path) => path is ForwardingPath.Kernel or ForwardingPath.Handoff;
}
