using System.Text.Json;

namespace Supervisor.Configuration;

/// <summary>What a changed value does when the supervisor is reloaded with SIGHUP.</summary>
internal enum ReloadEffect
{
    /// <summary>Applied with the reload: the new generation of workers, the arbiter and the request path use it.</summary>
    Applied,

    /// <summary>Read once at start (the listening side, the socket and key directories): a change needs a restart.</summary>
    NeedsRestart,
}

/// <summary>How a setting is written on the command line.</summary>
internal enum SettingShape
{
    /// <summary><c>--workers 4</c>: one value; the highest source wins.</summary>
    Single,

    /// <summary><c>--bind A --bind B</c>: repeatable; the highest source that gives any replaces the rest.</summary>
    List,

    /// <summary><c>--sticky-sessions</c>: a switch, <c>true</c> or <c>false</c> elsewhere.</summary>
    Switch,
}

/// <summary>
/// One setting, declared once: its names in every source (config key, flags, environment variable),
/// its default and where that default comes from, how its text is read and checked, and what a change
/// does on reload. The command line, the config file, the environment, <c>--help</c>, <c>--print-config</c>
/// and the README's option table are all made from these declarations (<see cref="Settings.All"/>).
/// </summary>
internal abstract class Setting
{
    /// <summary>The config-file key, in Gunicorn's snake_case: <c>max_requests</c>.</summary>
    public required string Key { get; init; }

    /// <summary>The flags, long form first: <c>--workers</c>, <c>-w</c>.</summary>
    public required IReadOnlyList<string> Flags { get; init; }

    /// <summary>Other config-file keys that mean the same, such as Gunicorn's own (<c>keepalive</c>, <c>raw_env</c>).</summary>
    public IReadOnlyList<string> KeyAliases { get; init; } = [];

    /// <summary>What the value looks like in help: <c>N</c>, <c>SECONDS</c>, <c>PATH</c>.</summary>
    public string Meta { get; init; } = "";

    public required string Section { get; init; }

    public required string Description { get; init; }

    /// <summary>The default as a user would write it, or a sentence when it is not a plain value.</summary>
    public required string DefaultText { get; init; }

    /// <summary>Why the default is what it is: <c>Gunicorn's</c>, <c>Kestrel's</c>, a measurement.</summary>
    public string? DefaultOrigin { get; init; }

    /// <summary>
    /// Variables outside the SUPERVISOR_ namespace that set the default, as Gunicorn reads <c>WEB_CONCURRENCY</c>;
    /// the first one set wins.
    /// </summary>
    public IReadOnlyList<string> DefaultVariables { get; init; } = [];

    public SettingShape Shape { get; init; } = SettingShape.Single;

    public ReloadEffect OnReload { get; init; } = ReloadEffect.Applied;

    /// <summary>False for settings that only make sense per invocation (<c>--config</c>) or that cannot be one variable (<c>--env</c>).</summary>
    public bool HasEnvironmentVariable { get; init; } = true;

    public bool InConfigFile { get; init; } = true;

    public string Flag => Flags[0];

    /// <summary><c>SUPERVISOR_MAX_REQUESTS</c> for <c>max_requests</c>.</summary>
    public string EnvironmentVariable => "SUPERVISOR_" + Key.ToUpperInvariant();

    /// <summary>Reads the values one source gave (one per occurrence); throws <see cref="SettingValueException"/>.</summary>
    public abstract object? ReadBoxed(IReadOnlyList<string> values);

    /// <summary>Reads the value of one of the <see cref="DefaultVariables"/>.</summary>
    public abstract object? ReadDefaultVariable(string name, string value);

    public abstract object? DefaultBoxed { get; }

    /// <summary>Writes a value as it would appear in a config file.</summary>
    public abstract void WriteJson(Utf8JsonWriter writer, object? value);

    /// <summary>A value as config-file JSON, on one line: for --print-config, and to tell whether a reload changed it.</summary>
    public string Format(object? value)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            WriteJson(writer, value);
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    public override string ToString() => Key;
}

/// <summary>A setting whose value is a <typeparamref name="T"/>.</summary>
internal sealed class Setting<T> : Setting
{
    public required Func<IReadOnlyList<string>, T> Read { get; init; }

    public required T Default { get; init; }

    public required Action<Utf8JsonWriter, T> Write { get; init; }

    /// <summary>Turns one of the <see cref="Setting.DefaultVariables"/>, by name and text, into the values' text (<c>PORT=5000</c> → <c>0.0.0.0:5000</c>).</summary>
    public Func<string, string, IReadOnlyList<string>>? FromDefaultVariable { get; init; }

    public override object? ReadBoxed(IReadOnlyList<string> values) => Read(values);

    public override object? ReadDefaultVariable(string name, string value) => Read(FromDefaultVariable is null ? [value] : FromDefaultVariable(name, value));

    public override object? DefaultBoxed => Default;

    public override void WriteJson(Utf8JsonWriter writer, object? value)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }
        Write(writer, (T)value);
    }
}

/// <summary>A value that does not fit its setting. The message says what is expected; the caller says where the value came from.</summary>
internal sealed class SettingValueException(string message) : Exception(message);
