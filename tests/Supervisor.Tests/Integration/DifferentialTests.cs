using System.Net;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;
using static Supervisor.Tests.Infrastructure.RawHttp;

namespace Supervisor.Tests.Integration;

/// <summary>
/// The same requests to the app alone and through the supervisor: the responses must be equal octet for
/// octet — status, every field with its value's octets, in order, the body and the trailers — apart from
/// what a proxy changes by right: the Date (a second later), and field names' case (HTTP/2 carries them in
/// lowercase, and names are case-insensitive, RFC 9110 5.1). A request Kestrel refuses at the front gets the
/// app alone's status and body, without the Server field the app's Kestrel adds (the front names no server).
/// </summary>
public sealed class DifferentialTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-diff-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private static IEnumerable<(string Name, byte[] Request)> Requests()
    {
        yield return ("a request Kestrel refuses (a value that is not UTF-8)", Request("GET", "/sized", Latin1("X-Name: caf\u00e9")));
        yield return ("204", Request("GET", "/status/204"));
        yield return ("304", Request("GET", "/status/304"));
        yield return ("404 from the app", Request("GET", "/status/404"));
        yield return ("500 with a body", Request("GET", "/status/500"));
        yield return ("no such endpoint", Request("GET", "/nowhere"));
        yield return ("HEAD with a Content-Length", Request("HEAD", "/sized"));
        yield return ("GET with a Content-Length", Request("GET", "/sized"));
        yield return ("HEAD of a status", Request("HEAD", "/status/200"));
        yield return ("obs-text in a response field", Request("GET", "/obs-text"));
        yield return ("obs-text in a response field, on YARP's path", [.. Request("POST", "/obs-text", Latin1("Content-Length: 1")), (byte)'x']);
        yield return ("a 300 KB response field", Request("GET", "/big-header?kb=300"));
        yield return ("twenty Set-Cookie fields", Request("GET", "/cookies?n=20"));
        yield return ("a body streamed in chunks", Request("GET", "/chunks?n=5&ms=20"));
        yield return ("server-sent events", Request("GET", "/sse?events=3&ms=30"));
        yield return ("a 1 MB download", Request("GET", "/download?mb=1"));
        yield return ("a POST with a body", [.. Request("POST", "/upload", Latin1("Content-Length: 5")), .. "hello"u8.ToArray()]);
    }

    [Fact]
    public async Task Responses_through_the_supervisor_equal_the_app_alones_octet_for_octet()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var alone = await AppAlone.StartAsync(output, artifacts.TestApp);
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");

        var differences = new List<string>();
        foreach (var (name, request) in Requests())
        {
            var isHead = request.AsSpan().StartsWith("HEAD"u8);
            var expected = await SendAsync(alone.BaseAddress, request, isHead);
            var actual = await SendAsync(supervisor.BaseAddress, request, isHead);
            var difference = Compare(expected, actual, answeredByFront: name.StartsWith("a request Kestrel refuses", StringComparison.Ordinal));
            output.WriteLine($"{name}: {expected.Status} / {actual.Status}, {expected.Fields.Count} fields, {expected.Body.Length} octets: {difference ?? "equal"}");
            if (difference is not null)
            {
                differences.Add($"{name}: {difference}");
            }
        }

        Assert.True(differences.Count == 0, string.Join('\n', differences));
    }

    [Fact]
    public async Task Trailers_reach_an_http2_client_as_the_app_alone_sends_them()
    {
        var artifacts = await Artifacts.GetAsync();
        var (certFile, keyFile, thumbprint) = TestCertificate.Create(_scratch);
        await using var alone = await AppAlone.StartAsync(output, artifacts.TestApp, (certFile, keyFile));
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--certfile", certFile, "--keyfile", keyFile);

        var expected = await GetHttp2Async(alone.BaseAddress, thumbprint, "/trailers");
        var actual = await GetHttp2Async(supervisor.BaseAddress, thumbprint, "/trailers");

        Assert.Equal("body with trailers\n", expected.Body);
        Assert.Equal([("x-checksum", "abc123"), ("x-trailer-latin", "fine")], expected.Trailers);
        Assert.Equal(expected.Body, actual.Body);
        Assert.Equal(expected.Trailers, actual.Trailers);
    }

    private static async Task<(string Body, (string, string)[] Trailers)> GetHttp2Async(Uri server, string thumbprint, string path)
    {
        using var client = TestCertificate.CreateClient(server, thumbprint);
        using var request = new HttpRequestMessage(HttpMethod.Get, path) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        return (body, [.. response.TrailingHeaders.SelectMany(header => header.Value.Select(value => (header.Key.ToLowerInvariant(), value)))]);
    }

    private static string? Compare(RawResponse expected, RawResponse actual, bool answeredByFront)
    {
        if (expected.Status != actual.Status)
        {
            return $"status {actual.Status}, the app alone's {expected.Status}";
        }
        var expectedFields = Comparable(expected.Fields.Where(field => !answeredByFront || !field.Name.Equals("Server", StringComparison.OrdinalIgnoreCase)));
        var actualFields = Comparable(actual.Fields);
        if (!expectedFields.SequenceEqual(actualFields))
        {
            return $"fields differ:\n  app alone:  {Show(expectedFields)}\n  supervisor: {Show(actualFields)}";
        }
        if (!expected.Body.AsSpan().SequenceEqual(actual.Body))
        {
            return $"bodies differ ({expected.Body.Length} and {actual.Body.Length} octets)";
        }
        return expected.Trailers.SequenceEqual(actual.Trailers) ? null : "trailers differ";
    }

    // Names in lowercase (HTTP/2 lowercases them; they are case-insensitive), values as sent; the Date
    // is the only field a proxy sets anew.
    private static List<(string, string)> Comparable(IEnumerable<(string Name, string Value)> fields) =>
        [.. fields.Where(field => !field.Name.Equals("Date", StringComparison.OrdinalIgnoreCase)).Select(field => (field.Name.ToLowerInvariant(), field.Value))];

    private static string Show(List<(string Name, string Value)> fields) =>
        string.Join(" | ", fields.Select(field => $"{field.Name}: {(field.Value.Length > 60 ? field.Value[..60] + "…" : field.Value)}"));
}
