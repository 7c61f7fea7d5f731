namespace Supervisor.Proxy;

/// <summary>The ceilings of the request limits the supervisor enforces at its public side.</summary>
internal static class EdgeLimits
{
    /// <summary>The longest request line the supervisor accepts when --limit-request-line is 0.</summary>
    public const int MaxRequestLineBytes = 65536;

    /// <summary>The largest header field --limit-request-field-size may allow.</summary>
    public const int MaxHeaderBytes = 65536;
}
