namespace Supervisor.Logging;

/// <summary>How the error log's lines are written (<c>--log-format</c>).</summary>
internal enum ErrorLogFormat
{
    /// <summary><c>[2026-11-24 10:00:00 +0000] [PID] [INFO] message</c>, as Gunicorn writes them.</summary>
    Gunicorn,

    /// <summary>One JSON object per line, with the event's properties as fields.</summary>
    Json,
}
