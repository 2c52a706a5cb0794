from pipelines.resources import SourcesProfile


def test_internet_clients_only_follow_redirects_to_their_services_hosts():
    with SourcesProfile(profile="internet").open() as endpoints:
        assert endpoints.commoncrawl_data().allowed_hosts == {"data.commoncrawl.org"}
        assert endpoints.commoncrawl_index().allowed_hosts == {"index.commoncrawl.org"}
        assert endpoints.github_api().allowed_hosts == {"api.github.com", "codeload.github.com"}
        assert "export.arxiv.org" in endpoints.arxiv().allowed_hosts
        assert "www.gutenberg.org" in endpoints.gutenberg().allowed_hosts


def test_sample_clients_stay_on_the_loopback_mirror(corpus_dir):
    with SourcesProfile(profile="sample", corpus_dir=str(corpus_dir)).open() as endpoints:
        for client in (endpoints.commoncrawl_data(), endpoints.github_api(), endpoints.arxiv()):
            assert "127.0.0.1" in client.allowed_hosts
            assert not any(host.endswith(".org") for host in client.allowed_hosts - {"127.0.0.1"})
