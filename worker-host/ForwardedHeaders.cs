using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Supervisor.WorkerHost;

/// <summary>
/// Who the client really is, when a trusted proxy (<c>--forwarded-allow-ips</c>) stands in front and says
/// so in <c>X-Forwarded-For</c>/<c>-Proto</c>/<c>-Host</c> or RFC 7239 <c>Forwarded</c>. The address list is
/// walked from the right, past each hop that is itself a trusted proxy; the first address that is not is
/// the client. From an untrusted peer nothing of this is believed.
/// </summary>
internal static class ForwardedHeaders
{
    public static readonly string[] Names = ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix", "Forwarded"];

    /// <summary>
    /// Gives the request the client's address, scheme and host as the app will see them (a trusted proxy's
    /// word, or the connection's), and removes the forwarding headers, so the app cannot mistake a
    /// client's own for a proxy's. The proxy front does it for every request; in kernel and handoff
    /// modes the worker-host does it in the worker, with the same --forwarded-allow-ips.
    /// </summary>
    public static void Settle(HttpContext context, TrustedProxies trusted)
    {
        var request = context.Request;
        var client = Resolve(context.Connection.RemoteIpAddress, request.Headers, trusted);
        if (client.Address is not null)
        {
            context.Connection.RemoteIpAddress = client.Address;
        }
        if (client.Scheme is not null)
        {
            request.Scheme = client.Scheme;
        }
        if (client.Host is not null)
        {
            request.Host = new HostString(client.Host);
        }
        foreach (var name in Names)
        {
            request.Headers.Remove(name);
        }
    }

    /// <summary>The client as the request claims it through <paramref name="peer"/>, or the peer itself.</summary>
    public static ClientView Resolve(IPAddress? peer, IHeaderDictionary headers, TrustedProxies trusted)
    {
        if (!trusted.Trusts(peer) && peer is not null)
        {
            return new ClientView(peer, null, null);
        }
        var hops = Hops(headers);
        var client = peer;
        string? scheme = null;
        string? host = null;
        // hops[^1] is what the proxy next to us saw; each earlier one was reported by the hop after it.
        for (var i = hops.Count - 1; i >= 0; i--)
        {
            if (client is not null && !trusted.Trusts(client))
            {
                break;
            }
            if (hops[i].Address is not { } address)
            {
                break;
            }
            client = address;
            scheme = hops[i].Scheme ?? scheme;
            host = hops[i].Host ?? host;
        }
        return new ClientView(client, scheme, host);
    }

    private static List<Hop> Hops(IHeaderDictionary headers)
    {
        var forwardedFor = headers["X-Forwarded-For"];
        if (!StringValues.IsNullOrEmpty(forwardedFor))
        {
            var addresses = Split(forwardedFor);
            // X-Forwarded-Proto and -Host come from the nearest proxy; they belong to the last hop.
            var scheme = Scheme(Split(headers["X-Forwarded-Proto"]).LastOrDefault());
            var host = Host(Split(headers["X-Forwarded-Host"]).LastOrDefault());
            return [.. addresses.Select((address, i) => new Hop(Address(address), i == addresses.Count - 1 ? scheme : null, i == addresses.Count - 1 ? host : null))];
        }
        return [.. Split(headers["Forwarded"]).Select(ParseForwardedElement)];
    }

    // RFC 7239: for=192.0.2.60;proto=http;host=example.com, with optional quotes and [IPv6]:port.
    private static Hop ParseForwardedElement(string element)
    {
        IPAddress? address = null;
        string? scheme = null;
        string? host = null;
        foreach (var pair in element.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                continue;
            }
            var value = pair[(equals + 1)..].Trim('"');
            switch (pair[..equals].ToLowerInvariant())
            {
                case "for":
                    address = Address(value);
                    break;
                case "proto":
                    scheme = Scheme(value);
                    break;
                case "host":
                    host = Host(value);
                    break;
            }
        }
        return new Hop(address, scheme, host);
    }

    /// <summary>An address as proxies write it: <c>192.0.2.60</c>, <c>192.0.2.60:4711</c>, <c>2001:db8::1</c>, <c>[2001:db8::1]:4711</c>.</summary>
    internal static IPAddress? Address(string text)
    {
        if (IPAddress.TryParse(text, out var address))
        {
            return address;
        }
        if (IPEndPoint.TryParse(text, out var endpoint))
        {
            return endpoint.Address;
        }
        return null;
    }

    private static string? Scheme(string? text) =>
        text?.ToLowerInvariant() is "http" or "https" ? text.ToLowerInvariant() : null;

    // A host as it may appear in a Host header, and nothing else: no paths, spaces or user info.
    private static string? Host(string? text) =>
        !string.IsNullOrEmpty(text) && text.Length <= 255 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':' or '[' or ']' or '_')
            ? text
            : null;

    private static List<string> Split(StringValues values) =>
        [.. values.SelectMany(value => (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))];

    private readonly record struct Hop(IPAddress? Address, string? Scheme, string? Host);
}

/// <summary>The client's address, and the scheme and host it used, where a trusted proxy told them.</summary>
internal readonly record struct ClientView(IPAddress? Address, string? Scheme, string? Host);
