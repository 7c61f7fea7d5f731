using System.Net.Sockets;
using System.Text;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// HTTP/1.1 as octets: a request sent exactly as written (obs-text, raw UTF-8, odd spellings a client
/// library would refuse), and the response read back exactly, its fields as Latin-1 strings (one char per
/// octet). The request should say "Connection: close": the response ends when the server closes.
/// </summary>
internal static class RawHttp
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static async Task<RawResponse> SendAsync(Uri server, byte[] request, bool isHead = false)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(Timeout);
        await client.ConnectAsync(server.Host, server.Port, timeout.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(request, timeout.Token);
        using var received = new MemoryStream();
        try
        {
            await stream.CopyToAsync(received, timeout.Token);
        }
        catch (IOException)
        {
            // A reset after the response (the server closed with our unread octets) still leaves the response.
        }
        return RawResponse.Parse(received.ToArray(), isHead);
    }

    /// <summary>A request line, Host, the given header lines (each without CRLF, as octets) and "Connection: close".</summary>
    public static byte[] Request(string method, string target, params byte[][] headerLines)
    {
        var request = new List<byte>();
        request.AddRange(Encoding.Latin1.GetBytes($"{method} {target} HTTP/1.1\r\nHost: example.test\r\n"));
        var closes = false;
        foreach (var line in headerLines)
        {
            request.AddRange(line);
            request.AddRange("\r\n"u8.ToArray());
            closes |= Encoding.Latin1.GetString(line).StartsWith("Connection:", StringComparison.OrdinalIgnoreCase);
        }
        if (!closes)
        {
            request.AddRange("Connection: close\r\n"u8.ToArray());
        }
        request.AddRange("\r\n"u8.ToArray());
        return [.. request];
    }

    /// <summary>A header line from text, each char one octet (so "\u00e9" is the octet 0xE9).</summary>
    public static byte[] Latin1(string line) => Encoding.Latin1.GetBytes(line);

    /// <summary>A header line in UTF-8.</summary>
    public static byte[] Utf8(string line) => Encoding.UTF8.GetBytes(line);
}

/// <summary>A response read as octets: status, fields in order (Latin-1 strings), the body (chunks joined) and the trailers.</summary>
internal sealed record RawResponse(int Status, IReadOnlyList<(string Name, string Value)> Fields, byte[] Body, IReadOnlyList<(string Name, string Value)> Trailers)
{
    public string BodyText => Encoding.UTF8.GetString(Body);

    public IEnumerable<string> Values(string name) => Fields.Where(field => field.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(field => field.Value);

    public static RawResponse Parse(byte[] octets, bool isHead)
    {
        var text = Encoding.Latin1.GetString(octets);
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (headEnd < 0)
        {
            throw new InvalidDataException($"no complete response head in {octets.Length} octets: {text[..Math.Min(200, text.Length)]}");
        }
        var lines = text[..headEnd].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var fields = lines.Skip(1).Select(SplitField).ToList();
        var rest = octets.AsSpan(headEnd + 4);
        var trailers = new List<(string, string)>();
        byte[] body;
        if (isHead || status is 204 or 304 || status < 200)
        {
            body = [];
        }
        else if (fields.Any(field => field.Name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && field.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            body = Dechunk(rest, trailers);
        }
        else if (fields.FirstOrDefault(field => field.Name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) is { Name: not null } length)
        {
            body = rest[..int.Parse(length.Value, System.Globalization.CultureInfo.InvariantCulture)].ToArray();
        }
        else
        {
            body = rest.ToArray();
        }
        return new RawResponse(status, fields, body, trailers);
    }

    private static (string Name, string Value) SplitField(string line)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        return (line[..colon], line[(colon + 1)..].Trim(' ', '\t'));
    }

    private static byte[] Dechunk(ReadOnlySpan<byte> octets, List<(string, string)> trailers)
    {
        var body = new List<byte>();
        while (true)
        {
            var lineEnd = octets.IndexOf("\r\n"u8);
            var size = Convert.ToInt32(Encoding.Latin1.GetString(octets[..lineEnd]).Split(';')[0].Trim(), 16);
            octets = octets[(lineEnd + 2)..];
            if (size == 0)
            {
                // The last chunk is followed by trailer lines, if any, then an empty line.
                var trailerText = Encoding.Latin1.GetString(octets);
                var end = trailerText.StartsWith("\r\n", StringComparison.Ordinal) ? 0 : trailerText.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                trailers.AddRange(trailerText[..end].Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Select(SplitField));
                return [.. body];
            }
            body.AddRange(octets[..size].ToArray());
            octets = octets[(size + 2)..];
        }
    }
}
