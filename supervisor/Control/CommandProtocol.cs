using System.Text.Json;
using System.Text.Json.Serialization;

namespace Supervisor.Control;

/// <summary>
/// What <c>supervisor status</c> and <c>supervisor reload</c> say to a running supervisor over its
/// command socket: one JSON line each way, then the supervisor closes the connection. JSON because
/// <c>status --json</c> hands the answer on to scripts as it came.
/// </summary>
internal static class CommandProtocol
{
    /// <summary>The command socket's name in the run directory, beside the workers' control socket.</summary>
    public const string SocketName = "command.sock";

    /// <summary>A request is one short line; anything longer is not one of ours.</summary>
    public const int MaxRequestBytes = 4096;

    public const string Status = "status";
    public const string Reload = "reload";

    /// <summary>From the supervisor a binary upgrade started, once it serves: this one hands over and stops.</summary>
    public const string Takeover = "takeover";

    public static string Write<T>(T value) => JsonSerializer.Serialize(value, typeof(T), CommandJson.Default);

    /// <summary>Null when the text is not JSON of that shape.</summary>
    public static T? Read<T>(string line)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(line, typeof(T), CommandJson.Default) as T;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <param name="Command"><see cref="CommandProtocol.Status"/> or <see cref="CommandProtocol.Reload"/>.</param>
/// <param name="Wait">For a reload: answer with its result rather than as soon as it is requested.</param>
/// <param name="Pid">For a takeover: the new supervisor's pid.</param>
internal sealed record CommandRequest(string Command, bool Wait = false, int? Pid = null);

/// <summary>The pool as the arbiter's loop saw it at one turn.</summary>
internal sealed record PoolStatusReply(
    int Pid,
    string Version,
    DateTimeOffset StartedAt,
    DateTimeOffset Now,
    int Workers,
    int ServingGeneration,
    string Reload,
    int InFlight,
    int Queued,
    IReadOnlyList<WorkerStatus> Pool);

/// <param name="State">booting, serving, ready (booted for a reload that has not taken over), recycling (its replacement boots), stopping.</param>
/// <param name="Requests">Requests the supervisor gave it.</param>
/// <param name="ResidentBytes">Its resident memory; null when /proc had none (it just exited).</param>
/// <param name="Detail">Why it stops or recycles; null otherwise.</param>
internal sealed record WorkerStatus(
    int Slot,
    int Pid,
    int Generation,
    string State,
    DateTimeOffset StartedAt,
    long Requests,
    int InFlight,
    long? ResidentBytes,
    string? Detail);

/// <summary>What became of a reload.</summary>
/// <param name="Result">requested (not waited for), completed, abandoned (a new worker failed), refused (bad configuration), stopping (the supervisor stops first).</param>
/// <param name="Generation">The generation serving when it ended.</param>
internal sealed record ReloadReply(string Result, int Generation, string Message)
{
    public const string Requested = "requested";
    public const string Completed = "completed";
    public const string Abandoned = "abandoned";
    public const string Refused = "refused";
    public const string Stopping = "stopping";
}

/// <summary>Whether the supervisor being upgraded handed over: it does only to the one it started.</summary>
internal sealed record TakeoverReply(bool Accepted, string Message);

/// <summary>Any request the supervisor could not take: malformed, unknown, or arriving as it stops.</summary>
internal sealed record ErrorReply(string Error);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CommandRequest))]
[JsonSerializable(typeof(PoolStatusReply))]
[JsonSerializable(typeof(ReloadReply))]
[JsonSerializable(typeof(TakeoverReply))]
[JsonSerializable(typeof(ErrorReply))]
internal sealed partial class CommandJson : JsonSerializerContext;
