using System.Net;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Publishing and deleting as several owners would, some hostile: names that Postgres could
/// confuse, racing first publishers, failing init reducers, unowned databases.
/// </summary>
public sealed class PublishingTests : OwnServerTest
{
    [Fact]
    public async Task Names_of_60_characters_that_share_59_get_a_schema_each_and_deleting_one_leaves_the_other()
    {
        var (mine, other) = (new string('a', 59) + "x", new string('a', 59) + "z");
        var (_, alice) = await Server.NewIdentityAsync();
        var (_, mallory) = await Server.NewIdentityAsync();
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync(mine, "ledger", alice)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync(mine, "increment", "[7]")).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync(other, "ledger", mallory)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Server.DeleteAsync(other, mallory)).StatusCode);

        Assert.Equal("7", await (await Server.CallAsync(mine, "counter_value", "")).Content.ReadAsStringAsync());
        Assert.Equal(7, await Database.ScalarAsync<long>($"SELECT value FROM \"db_{mine}\".counter"));
        Assert.Equal(0, await Database.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname = 'db_{other}'"));
    }

    [Theory]
    [InlineData(61)]
    [InlineData(62)]
    [InlineData(63)]
    public async Task Names_longer_than_60_characters_are_400(int length)
    {
        var problem = await AssertProblemAsync(await Server.PublishAsync(new string('a', length), "ledger"), HttpStatusCode.BadRequest);

        Assert.Contains("1 to 60 characters", problem.Detail());
    }

    [Fact]
    public async Task Racing_first_publishers_leave_one_owner_and_the_others_change_nothing()
    {
        var publishers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Server.NewIdentityAsync()));
        var modules = publishers.Select((_, i) => i % 2 == 0 ? "ledger" : "example").ToList();

        var responses = await Task.WhenAll(publishers.Select((p, i) => Server.PublishAsync("contested", modules[i], p.Token)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.Created), r => Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode));
        var winner = Array.FindIndex(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(publishers[winner].Identity, await Database.ScalarAsync<string>("SELECT owner FROM procyon.databases WHERE name = 'contested'"));
        // The tables are the winner's module's alone: ledger has `counter`, example has `person`.
        var tables = await Database.QueryAsync("SELECT name FROM procyon.tables WHERE db = 'contested' ORDER BY name");
        Assert.Contains(modules[winner] == "ledger" ? "counter" : "person", tables);
        Assert.DoesNotContain(modules[winner] == "ledger" ? "person" : "counter", tables);
        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("contested", modules[winner], publishers[winner].Token)).StatusCode);
    }

    [Fact]
    public async Task A_failing_init_reducer_refuses_a_clearing_publish_and_the_old_module_keeps_its_data()
    {
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync("kept", "ledger")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("kept", "increment", "[5]")).StatusCode);
        var wasm = await File.ReadAllBytesAsync(Modules.PathOf("initfails"));

        var problem = await AssertProblemAsync(await Server.PublishBytesAsync("kept", wasm, "?clear=true"), HttpStatusCode.UnprocessableEntity);

        Assert.Contains("the init reducer refuses this database", problem.Detail());
        Assert.Equal("5", await (await Server.CallAsync("kept", "counter_value", "")).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("kept", "increment", "[1]")).StatusCode);
        Assert.Equal(6, await Database.ScalarAsync<long>("SELECT value FROM db_kept.counter"));
    }

    [Fact]
    public async Task A_first_publish_whose_init_reducer_fails_leaves_no_database_and_no_owner()
    {
        var problem = await AssertProblemAsync(await Server.PublishAsync("never", "initfails"), HttpStatusCode.UnprocessableEntity);

        Assert.Contains("nothing was published", problem.Detail());
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/never/schema"), HttpStatusCode.NotFound);
        Assert.Equal(0, await Database.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'db_never'"));
        var (_, someoneElse) = await Server.NewIdentityAsync();
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync("never", "ledger", someoneElse)).StatusCode);
    }

    [Fact]
    public async Task Only_the_owner_deletes_and_a_database_without_an_owner_cannot_be_deleted_or_claimed()
    {
        var (_, owner) = await Server.NewIdentityAsync();
        var (_, other) = await Server.NewIdentityAsync();
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync("owned", "ledger", owner)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync("orphan", "ledger", owner)).StatusCode);
        await Database.ExecuteAsync("UPDATE procyon.databases SET owner = NULL WHERE name = 'orphan'");

        await AssertProblemAsync(await Server.DeleteAsync("owned", other), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await Server.DeleteAsync("orphan", other), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await Server.DeleteAsync("orphan", owner), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await Server.PublishAsync("orphan", "example", other), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await Server.DeleteAsync("missing", other), HttpStatusCode.NotFound);

        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("orphan", "counter_value", "")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Server.DeleteAsync("owned", owner)).StatusCode);
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/owned/schema"), HttpStatusCode.NotFound);
    }
}
