using System.Globalization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Supervisor.WorkerHost;

/// <summary>
/// What the supervisor adds to each request it forwards, and the widening of the app's own Kestrel
/// limits that makes room for it. A request reaches the worker with HTTP/2's four pseudo-header fields
/// where HTTP/1.1 had Host, its target as one of them, and X-Forwarded-For, -Proto and -Host; Kestrel
/// counts all of those against MaxRequestHeaderCount and MaxRequestHeadersTotalSize. Without room for
/// them a request the app alone would take gets 431 through the supervisor, and past twice the limits
/// Kestrel ends the whole HTTP/2 connection, failing every other request on it.
/// </summary>
public sealed record HeaderAllowance(int Fields, int Octets, int LargestField, int SupervisorMaxFields)
{
    /// <summary>Reads <c>FIELDS;OCTETS;LARGEST;MAXFIELDS</c>; null when absent or unreadable (the limits stay the app's).</summary>
    public static HeaderAllowance? Parse(string? text)
    {
        var parts = (text ?? "").Split(';');
        if (parts.Length != 4 || !parts.All(part => int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            return null;
        }
        var values = parts.Select(part => int.Parse(part, CultureInfo.InvariantCulture)).ToArray();
        return new HeaderAllowance(values[0], values[1], values[2], values[3]);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Fields};{Octets};{LargestField};{SupervisorMaxFields}");
}

/// <summary>Widens the app's Kestrel limits by the <see cref="HeaderAllowance"/>, after the app's own configuration.</summary>
internal sealed class HeaderAllowanceSetup(HeaderAllowance allowance) : IPostConfigureOptions<KestrelServerOptions>
{
    public void PostConfigure(string? name, KestrelServerOptions options)
    {
        var limits = options.Limits;
        // The app's limit keeps its meaning for the client's own fields. Kestrel ends the connection at
        // twice the count, so the count is also kept above half of what the supervisor may send.
        limits.MaxRequestHeaderCount = Math.Max(limits.MaxRequestHeaderCount + allowance.Fields, (allowance.SupervisorMaxFields + allowance.Fields + 1) / 2);
        limits.MaxRequestHeadersTotalSize += allowance.Octets;
        // One field longer than this breaks HPACK decoding (COMPRESSION_ERROR, the whole connection).
        limits.Http2.MaxRequestHeaderFieldSize = Math.Max(limits.Http2.MaxRequestHeaderFieldSize, allowance.LargestField);
    }
}
