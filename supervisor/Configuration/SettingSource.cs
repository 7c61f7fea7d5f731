namespace Supervisor.Configuration;

/// <summary>Where a setting's value can come from, in rising precedence.</summary>
internal enum SourceKind
{
    Default,

    /// <summary>A variable Gunicorn also reads for a default: WEB_CONCURRENCY, PORT, FORWARDED_ALLOW_IPS.</summary>
    DefaultVariable,

    ConfigFile,

    /// <summary>SUPERVISOR_&lt;NAME&gt;.</summary>
    EnvironmentVariable,

    /// <summary>SUPERVISOR_CMD_ARGS, read like a command line.</summary>
    CommandArgsVariable,

    CommandLine,

    /// <summary>The listening sockets systemd passed (LISTEN_FDS): they replace --bind, whatever gave it.</summary>
    SocketActivation,

    /// <summary>The listening sockets a supervisor upgrading itself (USR2) handed over: they replace --bind and --admin-bind.</summary>
    Upgrade,
}

/// <summary>Where a value came from, precisely enough to find it: <c>--workers</c>, <c>/etc/app.json: "workers"</c>, <c>$WEB_CONCURRENCY</c>.</summary>
internal sealed record SettingSource(SourceKind Kind, string Where)
{
    public static readonly SettingSource Default = new(SourceKind.Default, "default");

    public override string ToString() => Where;
}

/// <summary>The text one source gave for a setting, one entry per occurrence.</summary>
internal sealed record GivenValue(IReadOnlyList<string> Values, SettingSource Source);

/// <summary>A setting's value in effect, and where it came from (for --print-config).</summary>
internal sealed record EffectiveSetting(Setting Setting, object? Value, SettingSource Source);
