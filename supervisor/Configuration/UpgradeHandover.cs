using System.Globalization;

namespace Supervisor.Configuration;

/// <summary>
/// What a supervisor hands the new one it starts on USR2 (Gunicorn's binary upgrade), in one variable,
/// <c>SUPERVISOR_UPGRADE</c>: its pid, its command socket (where the new one says it has taken over),
/// and the listening sockets it inherits, by descriptor: <c>from=PID;socket=PATH;bind=3,h2c:4;admin=5</c>.
/// As with socket activation, the handed-over sockets are served instead of --bind: the addresses are
/// the running supervisor's, and not one connection is refused while they change hands.
/// </summary>
internal sealed record UpgradeHandover(int FromPid, string CommandSocket, IReadOnlyList<FdBind> Binds, FdBind? AdminBind)
{
    public const string Variable = "SUPERVISOR_UPGRADE";

    /// <summary>The handover meant for this process; null when it was not started by an upgrade.</summary>
    public static UpgradeHandover? FromEnvironment(IReadOnlyDictionary<string, string> environment) =>
        environment.TryGetValue(Variable, out var text) ? Parse(text) : null;

    public static UpgradeHandover Parse(string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var field in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = field.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || !fields.TryAdd(field[..equals], field[(equals + 1)..]))
            {
                throw Invalid(text);
            }
        }
        if (!fields.TryGetValue("from", out var fromText) || !int.TryParse(fromText, NumberStyles.None, CultureInfo.InvariantCulture, out var from)
            || !fields.TryGetValue("socket", out var socket) || socket.Length == 0
            || !fields.TryGetValue("bind", out var bindText))
        {
            throw Invalid(text);
        }
        var binds = bindText.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(descriptor => Descriptor(descriptor, text)).ToList();
        var admin = fields.TryGetValue("admin", out var adminText) ? Descriptor(adminText, text) : null;
        return binds.Count > 0 && admin is not { CleartextHttp2: true } ? new UpgradeHandover(from, socket, binds, admin) : throw Invalid(text);
    }

    public override string ToString() =>
        $"from={FromPid};socket={CommandSocket};bind={string.Join(',', Binds.Select(Spelled))}" + (AdminBind is { } admin ? $";admin={Spelled(admin)}" : "");

    private static string Spelled(FdBind bind) => (bind.CleartextHttp2 ? BindAddress.CleartextHttp2Prefix : "") + bind.Descriptor.ToString(CultureInfo.InvariantCulture);

    private static FdBind Descriptor(string text, string whole)
    {
        var h2c = text.StartsWith(BindAddress.CleartextHttp2Prefix, StringComparison.Ordinal);
        var number = h2c ? text[BindAddress.CleartextHttp2Prefix.Length..] : text;
        return int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var descriptor) && descriptor > 2
            ? new FdBind(descriptor) { CleartextHttp2 = h2c }
            : throw Invalid(whole);
    }

    // Set by the supervisor itself: a bad value means a mismatched pair of versions, or a hand-made one.
    private static Cli.UsageException Invalid(string text) =>
        new($"${Variable}='{text}' is not a handover this supervisor can read; it is set by a supervisor upgrading itself (USR2), never by hand: unset it");
}
