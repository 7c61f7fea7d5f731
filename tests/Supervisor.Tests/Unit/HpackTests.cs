using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Supervisor.Proxy.Http2;
using Supervisor.Tests.Infrastructure;

namespace Supervisor.Tests.Unit;

/// <summary>
/// The front's HTTP/2 client's header compression: RFC 7541's own examples (with and without Huffman
/// coding, requests and responses), blocks split at every octet, the dynamic table's rules, what is
/// refused and why, and the block a forwarded request is encoded to.
/// </summary>
public sealed class HpackTests
{
    private const int ListLimit = 64 * 1024;

    // RFC 7541 C.3 (without Huffman) and C.4 (with): three requests on one connection.
    private static readonly string[] PlainRequests = ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865", "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"];
    private static readonly string[] HuffmanRequests = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf", "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"];

    // RFC 7541 C.6: three responses with Huffman coding.
    private static readonly string[] HuffmanResponses =
    [
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
        "4883640effc1c0bf",
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ];

    private static readonly (string, string)[][] ExpectedRequests =
    [
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
        [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
    ];

    [Fact]
    public void The_rfc_7541_request_examples_decode_in_sequence_through_the_dynamic_table_with_and_without_huffman()
    {
        foreach (var blocks in new[] { PlainRequests, HuffmanRequests })
        {
            var decoder = new HpackDecoder(ListLimit);
            for (var i = 0; i < blocks.Length; i++)
            {
                Assert.Equal(ExpectedRequests[i], Decode(decoder, blocks[i]));
            }
        }
    }

    [Fact]
    public void The_rfc_7541_huffman_response_examples_decode_in_sequence()
    {
        var decoder = new HpackDecoder(ListLimit);
        const string date21 = "Mon, 21 Oct 2013 20:13:21 GMT", date22 = "Mon, 21 Oct 2013 20:13:22 GMT", location = "https://www.example.com";

        Assert.Equal([(":status", "302"), ("cache-control", "private"), ("date", date21), ("location", location)], Decode(decoder, HuffmanResponses[0]));
        Assert.Equal([(":status", "307"), ("cache-control", "private"), ("date", date21), ("location", location)], Decode(decoder, HuffmanResponses[1]));
        Assert.Equal(
            [
                (":status", "200"), ("cache-control", "private"), ("date", date22), ("location", location), ("content-encoding", "gzip"),
                ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
            ],
            Decode(decoder, HuffmanResponses[2]));
    }

    [Fact]
    public void A_block_split_at_any_octet_decodes_as_the_whole_block_does()
    {
        foreach (var blocks in new[] { PlainRequests, HuffmanRequests, HuffmanResponses })
        {
            var whole = new HpackDecoder(ListLimit);
            var expected = blocks.Select(block => Decode(whole, block)).ToArray();
            for (var split = 1; split < 40; split++)
            {
                var fragmented = new HpackDecoder(ListLimit);
                for (var i = 0; i < blocks.Length; i++)
                {
                    Assert.Equal(expected[i], DecodeInFragments(fragmented, Convert.FromHexString(blocks[i]), split));
                }
            }
        }
    }

    [Fact]
    public void Huffman_decoding_takes_every_octet_value_back_from_its_code()
    {
        var random = new Random(7541);
        for (var round = 0; round < 200; round++)
        {
            var original = new byte[random.Next(0, 300)];
            random.NextBytes(original);
            if (round == 0)
            {
                original = [.. Enumerable.Range(0, 256).Select(value => (byte)value)];
            }
            var encoded = HpackWriter.HuffmanEncode(original);
            var decoded = new byte[Huffman.MaxDecodedLength(encoded.Length)];

            var length = Huffman.Decode(encoded, decoded);

            Assert.Equal(original, decoded[..length]);
        }
    }

    [Fact]
    public void The_dynamic_table_evicts_its_oldest_entries_beyond_4096_octets()
    {
        var decoder = new HpackDecoder(ListLimit);
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

    [Fact]
    public void A_size_update_at_the_start_of_a_block_evicts_down_to_the_new_size_and_no_further()
    {
        var decoder = new HpackDecoder(ListLimit);
        for (var i = 0; i < 3; i++)
        {
            Decode(decoder, "4004" + Hex($"x{i:D3}") + "64" + Hex(new string('v', 100)));
        }

        // 300 octets hold two entries of 136: the oldest goes, the newest two stay; then back to 4096.
        Assert.Equal([("x002", new string('v', 100))], Decode(decoder, "3f8d02" + "be"));
        Assert.Equal([("x001", new string('v', 100))], Decode(decoder, "bf"));
        Assert.Throws<HpackException>(() => Decode(decoder, "c0"));
        Assert.Equal([("x002", new string('v', 100))], Decode(decoder, "3fe11f" + "be"));
    }

    [Theory]
    [InlineData("be", "outside the tables")] // Index 62, with an empty dynamic table.
    [InlineData("80", "outside the tables")] // Index 0.
    [InlineData("3fe221", "above the 4096 allowed")] // A size update to 4,353 octets.
    [InlineData("823f00", "after the first field")] // A size update after :method GET.
    [InlineData("000a6e616d65", "ends inside a field")] // A name of 10 octets with 4 there.
    [InlineData("0081ff", "invalid padding")] // A Huffman name of one octet: 8 bits of padding.
    [InlineData("0084ffffffff", "EOS")] // A Huffman name holding the EOS symbol.
    [InlineData("0087ffffffffffffff", "EOS")]
    [InlineData("3fffffffff0f", "longer than 2^28")] // An integer past 2^28.
    public void Blocks_that_break_hpack_are_refused_with_the_reason(string block, string reason) =>
        Assert.Contains(reason, Assert.Throws<HpackException>(() => Decode(new HpackDecoder(ListLimit), block)).Message, StringComparison.Ordinal);

    [Fact]
    public void A_block_above_the_list_limit_delivers_what_fits_and_still_keeps_the_table_in_step()
    {
        var decoder = new HpackDecoder(1000);
        var fields = new List<KeyValuePair<string, string>>();
        decoder.BeginBlock(fields);
        // 2,000 octets of value, not indexed: read past, not stored. Then an indexed literal that the
        // table must hold whatever became of the block.
        decoder.Decode(Convert.FromHexString("0005" + Hex("x-big") + "7f d1 0e".Replace(" ", "", StringComparison.Ordinal) + Hex(new string('b', 2000))));
        decoder.Decode(Convert.FromHexString("4005" + Hex("x-kep") + "03" + Hex("yes")));
        decoder.EndBlock();

        Assert.True(decoder.ExceededListSize);
        Assert.DoesNotContain(fields, field => field.Key == "x-big");
        Assert.Equal([("x-kep", "yes")], Decode(decoder, "be"));
        Assert.False(decoder.ExceededListSize);
    }

    [Fact]
    public void A_forwarded_request_carries_the_clients_fields_as_the_app_would_read_them_and_the_clients_identity()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "DELETE";
        context.Request.Scheme = "https";
        context.Request.Protocol = "HTTP/1.1";
        context.Request.Host = new HostString("api.example.com");
        context.Connection.RemoteIpAddress = IPAddress.Parse("2001:db8::7");
        context.Request.Headers["Accept"] = "application/json";
        context.Request.Headers["Cookie"] = new[] { "a=1", "name=José" };
        context.Request.Headers["Connection"] = "keep-alive, X-Hop";
        context.Request.Headers["X-Hop"] = "named in Connection";
        context.Request.Headers["Keep-Alive"] = "timeout=5";
        context.Request.Headers["TE"] = "trailers";
        context.Request.Headers["Proxy-Authorization"] = "Basic cHJveHk6c2VjcmV0";
        context.Request.Headers["Forwarded"] = "for=192.0.2.1";
        context.Request.Headers["User-Agent"] = "Mozilla 日本";
        context.Request.Headers["X-Long"] = new string('z', 300); // A length past the 7-bit prefix.

        var request = RequestHeaderEncoder.Encode(context.Request, "/items/7?force=true");
        var fields = new List<KeyValuePair<string, string>>();
        var decoder = new HpackDecoder(ListLimit);
        decoder.BeginBlock(fields);
        decoder.Decode(request.Block.Span);
        decoder.EndBlock();
        request.Return();

        // Values come back as the worker's Kestrel reads them: UTF-8.
        var utf8 = fields.Select(field => (field.Key, Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(field.Value)))).ToArray();
        Assert.Equal(
            [
                (":method", "DELETE"), (":scheme", "http"), (":path", "/items/7?force=true"), (":authority", "api.example.com"),
                ("accept", "application/json"), ("cookie", "a=1"), ("cookie", "name=José"), ("user-agent", "Mozilla 日本"), ("x-long", new string('z', 300)),
                ("x-forwarded-for", "2001:db8::7"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com"),
            ],
            utf8);
        Assert.Equal(fields.Sum(field => field.Key.Length + field.Value.Length + 32), request.ListSize);
    }

    [Fact]
    public void An_http2_clients_te_trailers_is_forwarded_as_http2_spells_it()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Protocol = "HTTP/2";
        context.Request.Host = new HostString("grpc.example.com");
        context.Request.Headers["TE"] = "deflate, Trailers";

        var request = RequestHeaderEncoder.Encode(context.Request, "/");
        var fields = new List<KeyValuePair<string, string>>();
        var decoder = new HpackDecoder(ListLimit);
        decoder.BeginBlock(fields);
        decoder.Decode(request.Block.Span);
        decoder.EndBlock();
        request.Return();

        Assert.Contains(new KeyValuePair<string, string>("te", "trailers"), fields);
    }

    private static (string, string)[] Decode(HpackDecoder decoder, string hex) => DecodeInFragments(decoder, Convert.FromHexString(hex), int.MaxValue);

    private static (string, string)[] DecodeInFragments(HpackDecoder decoder, byte[] block, int fragmentLength)
    {
        var fields = new List<KeyValuePair<string, string>>();
        decoder.BeginBlock(fields);
        for (var at = 0; at < block.Length; at += fragmentLength)
        {
            decoder.Decode(block.AsSpan(at, Math.Min(fragmentLength, block.Length - at)));
        }
        decoder.EndBlock();
        return [.. fields.Select(field => (field.Key, field.Value))];
    }

    private static string Hex(string ascii) => Convert.ToHexString(Encoding.ASCII.GetBytes(ascii));
}
