using System.Net;
using Microsoft.AspNetCore.Http;
using Supervisor.Proxy.Http2;

namespace Supervisor.Tests.Unit;

/// <summary>The front's HTTP/2 client's header blocks: RFC 7541's own examples, the dynamic table's bounds, and what it refuses.</summary>
public sealed class HpackTests
{
    [Fact]
    public void The_rfc_7541_request_examples_decode_in_sequence_through_the_dynamic_table()
    {
        var decoder = new HpackDecoder();

        // RFC 7541 C.3.1 to C.3.3: three requests on one connection, without Huffman coding.
        Assert.Equal(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            Decode(decoder, "828684410f7777772e6578616d706c652e636f6d"));
        Assert.Equal(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
            Decode(decoder, "828684be58086e6f2d6361636865"));
        Assert.Equal(
            [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
            Decode(decoder, "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"));
    }

    [Fact]
    public void The_dynamic_table_evicts_its_oldest_entries_beyond_4096_octets()
    {
        var decoder = new HpackDecoder();
        // Literal with incremental indexing, new name: 40 entries of 32 + 4 + 100 = 136 octets each.
        for (var i = 0; i < 40; i++)
        {
            Decode(decoder, "4004" + Hex($"x{i:D3}") + "64" + Hex(new string('v', 100)));
        }

        // 4096 / 136 = 30 entries stay: index 62 is the newest (x039), 91 the oldest kept (x010).
        Assert.Equal([("x039", new string('v', 100))], Decode(decoder, "be"));
        Assert.Equal([("x010", new string('v', 100))], Decode(decoder, "db"));
        Assert.Throws<HpackException>(() => Decode(decoder, "dc"));
    }

    [Theory]
    [InlineData("0085f2b24a84ff", "Huffman")] // RFC 7541 C.4: a Huffman-coded name.
    [InlineData("be", "outside the tables")] // Index 62, with an empty dynamic table.
    [InlineData("3fe221", "dynamic table size update")] // A size update to 4,353 octets.
    [InlineData("000a6e616d65", "past the end")] // A name of 10 octets with 4 there.
    public void Blocks_it_cannot_decode_are_refused_with_the_reason(string block, string reason) =>
        Assert.Contains(reason, Assert.Throws<HpackException>(() => Decode(new HpackDecoder(), block)).Message, StringComparison.Ordinal);

    [Fact]
    public void A_forwarded_request_carries_its_fields_in_lowercase_without_hop_by_hop_ones_and_with_the_clients_identity()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "DELETE";
        context.Request.Scheme = "https";
        context.Request.Host = new HostString("api.example.com");
        context.Connection.RemoteIpAddress = IPAddress.Parse("2001:db8::7");
        context.Request.Headers["Accept"] = "application/json";
        context.Request.Headers["Cookie"] = new[] { "a=1", "b=2" };
        context.Request.Headers["Connection"] = "keep-alive";
        context.Request.Headers["Keep-Alive"] = "timeout=5";
        context.Request.Headers["TE"] = "gzip";
        context.Request.Headers["Forwarded"] = "for=192.0.2.1";
        context.Request.Headers["X-Long"] = new string('z', 300); // A length past the 7-bit prefix.

        var (buffer, length) = RequestHeaderEncoder.Encode(context.Request, "/items/7?force=true");
        var fields = new List<KeyValuePair<string, string>>();
        new HpackDecoder().Decode(buffer.AsSpan(0, length), fields);

        Assert.Equal(
            [
                (":method", "DELETE"), (":scheme", "http"), (":path", "/items/7?force=true"), (":authority", "api.example.com"),
                ("accept", "application/json"), ("cookie", "a=1"), ("cookie", "b=2"), ("x-long", new string('z', 300)),
                ("x-forwarded-for", "2001:db8::7"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com"),
            ],
            fields.Select(field => (field.Key, field.Value)).ToArray());
    }

    private static (string, string)[] Decode(HpackDecoder decoder, string hex)
    {
        var fields = new List<KeyValuePair<string, string>>();
        decoder.Decode(Convert.FromHexString(hex), fields);
        return [.. fields.Select(field => (field.Key, field.Value))];
    }

    private static string Hex(string ascii) => Convert.ToHexString(System.Text.Encoding.ASCII.GetBytes(ascii));
}
